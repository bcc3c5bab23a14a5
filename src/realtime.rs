//! Optional real-time setup of the control thread: SCHED_FIFO priority, memory locking and CPU pinning.
//!
//! Each step is attempted only when asked for and reports what it could not do; the loop still runs (with a
//! clear warning) when the operating system refuses, e.g. without `CAP_SYS_NICE` / `rtprio` limits.

/// What the caller asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RealtimeRequest {
    /// SCHED_FIFO priority (1–99), if any.
    pub fifo_priority: Option<i32>,
    /// Lock current and future memory (mlockall) so page faults never stall a tick.
    pub lock_memory: bool,
    /// Pin the calling thread to this CPU.
    pub cpu: Option<usize>,
}

/// Outcome of each requested step: `Ok(())` when applied, `Err(reason)` when refused.
#[derive(Debug, Default)]
pub struct RealtimeReport {
    /// SCHED_FIFO result.
    pub fifo: Option<Result<(), String>>,
    /// mlockall result.
    pub lock_memory: Option<Result<(), String>>,
    /// CPU pinning result.
    pub cpu: Option<Result<(), String>>,
}

impl RealtimeReport {
    /// One warning line per refused step (empty if all applied).
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let items = [("SCHED_FIFO", &self.fifo), ("mlockall", &self.lock_memory), ("CPU pinning", &self.cpu)];
        for (name, result) in items {
            if let Some(Err(reason)) = result {
                out.push(format!("{name} not applied ({reason}); timing will be less deterministic"));
            }
        }
        out
    }
}

/// CLOCK_MONOTONIC now [ns]. Real-time safe (vDSO call, no allocation).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Sleeps until the absolute CLOCK_MONOTONIC time `deadline_ns` [ns] (absolute deadlines do not drift: a late
/// tick does not shift the next one). Returns at once if the deadline has passed. Real-time safe.
pub fn sleep_until_ns(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    loop {
        // SAFETY: `ts` is a valid timespec; a null remainder is allowed with TIMER_ABSTIME.
        let rc =
            unsafe { libc::clock_nanosleep(libc::CLOCK_MONOTONIC, libc::TIMER_ABSTIME, &ts, std::ptr::null_mut()) };
        // EINTR (a signal, e.g. Ctrl-C): sleep again to the same absolute deadline.
        if rc != libc::EINTR {
            break;
        }
    }
}

/// Sets the calling thread's timer slack to 1 ns (`prctl(PR_SET_TIMERSLACK)`): a normal (non-SCHED_FIFO) thread's
/// sleeps are otherwise allowed to end up to 50 µs late so the kernel can batch wake-ups — 5 % of a 1 kHz period
/// added to every tick's jitter. Needs no privilege. Not real-time safe (a system call); call before the loop.
pub fn minimize_timer_slack() -> Result<(), String> {
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
    if rc == 0 { Ok(()) } else { Err(last_os_error()) }
}

/// The calling thread's timer slack [ns] (`prctl(PR_GET_TIMERSLACK)`).
#[cfg(test)]
fn timer_slack_ns() -> Result<u64, String> {
    // SAFETY: PR_GET_TIMERSLACK takes no argument and returns the slack.
    let rc = unsafe { libc::prctl(libc::PR_GET_TIMERSLACK, 0, 0, 0, 0) };
    if rc >= 0 { Ok(rc as u64) } else { Err(last_os_error()) }
}

fn last_os_error() -> String {
    std::io::Error::last_os_error().to_string()
}

/// Applies the request to the calling thread. Not real-time safe (system calls); call before the loop.
pub fn apply(request: RealtimeRequest) -> RealtimeReport {
    let mut report = RealtimeReport::default();
    if let Some(priority) = request.fifo_priority {
        report.fifo = Some(if !(1..=99).contains(&priority) {
            Err(format!("priority {priority} outside 1..=99"))
        } else {
            let param = libc::sched_param { sched_priority: priority };
            // SAFETY: `param` is a valid, initialised sched_param; pid 0 means the calling thread.
            let rc = unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) };
            if rc == 0 { Ok(()) } else { Err(last_os_error()) }
        });
    }
    if request.lock_memory {
        // SAFETY: mlockall takes only flags and touches no Rust-managed memory.
        let rc = unsafe { libc::mlockall(libc::MCL_CURRENT | libc::MCL_FUTURE) };
        report.lock_memory = Some(if rc == 0 { Ok(()) } else { Err(last_os_error()) });
    }
    if let Some(cpu) = request.cpu {
        report.cpu = Some(if cpu >= libc::CPU_SETSIZE as usize {
            Err(format!("cpu {cpu} out of range"))
        } else {
            // SAFETY: cpu_set_t is plain data, zero is a valid (empty) set; CPU_SET is given an index below
            // CPU_SETSIZE (checked above); pid 0 is the calling thread and the size matches the set.
            let rc = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
            };
            if rc == 0 { Ok(()) } else { Err(last_os_error()) }
        });
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_until_never_returns_before_the_deadline() {
        for offset_us in [0u64, 500, 2_000] {
            let deadline = monotonic_ns() + offset_us * 1_000;
            sleep_until_ns(deadline);
            assert!(monotonic_ns() >= deadline, "woke before the deadline (+{offset_us} us)");
        }
        // A deadline in the past returns immediately rather than sleeping a period.
        let before = monotonic_ns();
        sleep_until_ns(before.saturating_sub(1_000_000));
        assert!(monotonic_ns() >= before);
    }

    #[test]
    fn timer_slack_is_minimized_for_a_paced_loop() {
        // Run on a thread of its own: the slack is per thread, and the test harness's threads keep theirs.
        std::thread::spawn(|| {
            minimize_timer_slack().unwrap();
            assert_eq!(timer_slack_ns().unwrap(), 1);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn nothing_requested_nothing_reported() {
        let r = apply(RealtimeRequest::default());
        assert!(r.fifo.is_none() && r.lock_memory.is_none() && r.cpu.is_none());
        assert!(r.warnings().is_empty());
    }

    #[test]
    fn invalid_priority_is_refused_with_reason() {
        let r = apply(RealtimeRequest { fifo_priority: Some(150), ..Default::default() });
        let w = r.warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("SCHED_FIFO") && w[0].contains("150"), "{w:?}");
    }

    #[test]
    fn pinning_to_cpu_zero_works_on_linux() {
        // CPU 0 always exists; pinning the test thread to it must succeed.
        let r = apply(RealtimeRequest { cpu: Some(0), ..Default::default() });
        assert!(matches!(r.cpu, Some(Ok(()))), "{:?}", r.cpu);
    }
}
