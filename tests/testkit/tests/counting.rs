//! The counting allocator counts what the current thread allocates, and only that.

plexo_testkit::install_counting_allocator!();

use plexo_testkit::{AllocationWindow, assert_installed, count_allocations};

#[test]
fn counts_allocations_of_the_current_thread() {
    assert_installed();
    let n = count_allocations(|| {
        let v: Vec<u8> = std::hint::black_box(Vec::with_capacity(64));
        drop(v);
        let b = std::hint::black_box(Box::new([0u8; 16]));
        drop(b);
    });
    assert_eq!(n, 2, "one Vec and one Box");
}

#[test]
fn counts_realloc_and_alloc_zeroed() {
    let window = AllocationWindow::open();
    let mut v: Vec<u8> = std::hint::black_box(Vec::with_capacity(1));
    v.extend_from_slice(&[0; 4096]); // grows: realloc
    let z = std::hint::black_box(vec![0u64; 1024]); // vec![0; n]: alloc_zeroed
    drop((v, z));
    assert!(window.allocations() >= 3, "{} allocations", window.allocations());
}

#[test]
fn code_that_does_not_allocate_counts_zero() {
    let mut x = [0.0f64; 8];
    let n = count_allocations(|| {
        for (i, xi) in x.iter_mut().enumerate() {
            *xi = (i as f64).sin();
        }
    });
    assert_eq!(n, 0);
    assert!(x[1] > 0.8);
}

#[test]
fn other_threads_are_not_counted() {
    let mut in_spawned_thread = 0;
    let in_this_thread = count_allocations(|| {
        std::thread::scope(|s| {
            s.spawn(|| {
                in_spawned_thread = count_allocations(|| {
                    for i in 0..1000u64 {
                        drop(std::hint::black_box(Box::new(i)));
                    }
                });
            });
        });
    });
    assert_eq!(in_spawned_thread, 1000, "the spawned thread counts its own 1000 boxes");
    // Spawning allocates a few things on the spawning thread (thread handle, result packet), not the 1000 boxes.
    assert!(in_this_thread < 100, "{in_this_thread} allocations counted on the spawning thread");
}
