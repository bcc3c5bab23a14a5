//! How the app writes what a clinic keeps (session state, summaries, recordings, candump logs, calibrations,
//! replay outputs): never in place. Each output is written to a temporary sibling in the same directory,
//! flushed to disk (fsync), then renamed over the target — a crash or `kill -9` leaves either the previous file
//! or the complete new one, never a truncated file. Before anything is created, the paths a command was given
//! are checked: one path for two roles, or an output that is also an input, is an error.
//!
//! Every output may hold patient data: files are created owner-only (0600) and the directories the app creates
//! for them owner-only (0700), whatever the umask (the mode is set explicitly, not requested through it).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every output file: read and write for the owner only.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory the app creates for its outputs: owner only.
pub const DIR_MODE: u32 = 0o700;

use crate::AppError;

fn io_error(path: &Path, source: std::io::Error) -> AppError {
    AppError::Io { path: path.display().to_string(), source }
}

/// The temporary sibling an output is written to before it replaces `path`: `.<name>.partial-<pid>` in the same
/// directory (so the rename stays on one file system).
pub fn partial_path(path: &Path) -> PathBuf {
    let name = path.file_name().map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.partial-{}", std::process::id()))
}

/// Creates the directory of `path` if it has one that does not exist yet: every directory created is 0700
/// ([`DIR_MODE`], whatever the umask); existing directories are left as they are.
pub fn create_parent(path: &Path) -> Result<(), AppError> {
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(());
    };
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.as_os_str().is_empty() && !d.exists()).collect();
    for d in missing.iter().rev() {
        match std::fs::DirBuilder::new().mode(DIR_MODE).create(d) {
            Ok(()) => {
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(DIR_MODE)).map_err(|e| io_error(d, e))?
            }
            // Created meanwhile by someone else (another plexo process): not ours to change.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(io_error(d, e)),
        }
    }
    Ok(())
}

/// Creates (or truncates) the output file `path` owner-only ([`FILE_MODE`], whatever the umask). Not
/// real-time safe.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new().write(true).create(true).truncate(true).mode(FILE_MODE).open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    Ok(file)
}

/// Makes the finished temporary file `partial` the file `path`: owner-only mode ([`FILE_MODE`], also for a
/// file another writer created, e.g. the recording), fsync, rename over `path`, fsync of the directory (so the
/// rename itself survives a power loss). Not real-time safe.
pub fn commit(partial: &Path, path: &Path) -> Result<(), AppError> {
    File::open(partial)
        .and_then(|f| {
            f.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
            f.sync_all()
        })
        .map_err(|e| io_error(partial, e))?;
    std::fs::rename(partial, path).map_err(|e| io_error(path, e))?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error(dir, e))
}

/// Writes `path` atomically with `write` (see the module doc): the previous file stays intact if `write` or any
/// step fails, and the temporary file is removed. Creates the directory. Not real-time safe.
pub fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), AppError> {
    create_parent(path)?;
    let partial = partial_path(path);
    let written = create_private(&partial).and_then(|mut f| {
        write(&mut f)?;
        f.flush()
    });
    if let Err(e) = written {
        // The partial file is garbage either way; failing to remove it must not hide the write error.
        let _ = std::fs::remove_file(&partial);
        return Err(io_error(path, e));
    }
    commit(&partial, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })
}

/// Writes `contents` to `path` atomically ([`write_atomically_with`]). Not real-time safe.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), AppError> {
    write_atomically_with(path, |f| f.write_all(contents))
}

/// Largest configuration-type input accepted [bytes]: robot URDF, patient, protocol, controller and hardware
/// configuration, calibration and session state files (the shipped ones are below 40 kB; 16 MiB leaves room
/// for a URDF with inline meshes and stops a mistaken path to a disk image or a log before it fills memory).
pub const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Largest candump log `plexo replay` reads [bytes] (read whole: 1 GiB ≈ 25 million frames ≈ 3.5 h of two
/// buses at 1 kHz with two joints each).
pub const MAX_LOG_BYTES: u64 = 1 << 30;

/// What a non-regular file is, for the refusal message.
fn kind_of(t: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn input_refused(path: &Path, reason: String) -> AppError {
    AppError::Config { file: path.display().to_string(), key: "(input file)".into(), reason }
}

fn check_metadata(path: &Path, meta: &std::fs::Metadata, limit: u64) -> Result<(), AppError> {
    if !meta.file_type().is_file() {
        return Err(input_refused(
            path,
            format!("is {}: give a regular file (reading it could block or never end)", kind_of(meta.file_type())),
        ));
    }
    if meta.len() > limit {
        return Err(input_refused(
            path,
            format!("is {} bytes; input files of this kind are limited to {limit} bytes", meta.len()),
        ));
    }
    Ok(())
}

/// Refuses an input that is not a regular file (a FIFO, a device, a directory, a socket: reading a FIFO hangs,
/// a device may never end) or is larger than `limit` [bytes] — without opening it. For inputs another crate
/// reads. Not real-time safe.
pub fn check_input(path: &Path, limit: u64) -> Result<(), AppError> {
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    check_metadata(path, &meta, limit)
}

/// Reads the input `path` as text after [`check_input`]'s checks; opened non-blocking and checked again on
/// the open file (a FIFO swapped in meanwhile is refused, not waited on), and never more than `limit` bytes
/// read. Not real-time safe.
pub fn read_input(path: &Path, limit: u64) -> Result<String, AppError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    check_input(path, limit)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| io_error(path, e))?;
    check_metadata(path, &file.metadata().map_err(|e| io_error(path, e))?, limit)?;
    let mut text = String::new();
    file.take(limit + 1).read_to_string(&mut text).map_err(|e| io_error(path, e))?;
    if text.len() as u64 > limit {
        return Err(input_refused(path, format!("grew beyond the limit of {limit} bytes while being read")));
    }
    Ok(text)
}

/// The file a path names, for comparing paths: canonical if it exists, else its canonical directory joined with
/// its name, else as given (made absolute).
fn identity(path: &Path) -> PathBuf {
    if let Ok(p) = path.canonicalize() {
        return p;
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match (dir.canonicalize(), path.file_name()) {
        (Ok(d), Some(name)) => d.join(name),
        _ => std::env::current_dir().map_or_else(|_| path.to_path_buf(), |cwd| cwd.join(path)),
    }
}

/// Refuses one path in two roles: two outputs that are the same file, or an output that is also an input.
/// `inputs` and `outputs` are `(role, path)` pairs (role as the option that gave it, e.g. `--save`). Call before
/// any file is created.
pub fn check_distinct(inputs: &[(&str, &Path)], outputs: &[(&str, &Path)]) -> Result<(), AppError> {
    let outs: Vec<(&str, &Path, PathBuf)> = outputs.iter().map(|(r, p)| (*r, *p, identity(p))).collect();
    for (i, (role, path, id)) in outs.iter().enumerate() {
        if let Some((other, ..)) = outs[..i].iter().find(|(_, _, o)| o == id) {
            return Err(AppError::Config {
                file: path.display().to_string(),
                key: format!("{other} and {role}"),
                reason: "the same file for two outputs: one would overwrite the other".into(),
            });
        }
        if let Some((input, _)) = inputs.iter().find(|(_, p)| identity(p) == *id) {
            return Err(AppError::Config {
                file: path.display().to_string(),
                key: format!("{input} and {role}"),
                reason: "an input is also an output: it would be overwritten".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("plexo-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_write_that_fails_midway_leaves_the_previous_file_intact_and_no_partial_file() {
        // Regression (issue 13 §2): a kill during the state write left a 0-byte file.
        let d = dir("atomic");
        let path = d.join("s.state.toml");
        write_atomically(&path, b"previous session").unwrap();
        let failed = write_atomically_with(&path, |f| {
            f.write_all(b"half of the new")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(failed.unwrap_err().to_string().contains("disk full"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "previous session");
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 1, "no partial file is left behind");
        write_atomically(&path, b"next session").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "next session");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn outputs_are_owner_only_and_so_are_the_directories_created_for_them() {
        // Issue 13 §2: patient data files were created with the umask's mode (0644: readable by every user).
        let d = dir("modes");
        let path = d.join("new/deeper/s.state.toml");
        write_atomically(&path, b"state").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&d.join("new")), 0o700);
        assert_eq!(mode(&d.join("new/deeper")), 0o700);
        // A file another writer created with a wider mode is owner-only once committed.
        let other = d.join("other.rrd");
        std::fs::write(partial_path(&other), b"recording").unwrap();
        std::fs::set_permissions(partial_path(&other), std::fs::Permissions::from_mode(0o666)).unwrap();
        commit(&partial_path(&other), &other).unwrap();
        assert_eq!(mode(&other), 0o600);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_fifo_a_directory_a_device_or_an_oversized_file_is_refused_without_blocking() {
        // Issue 13 §2: a FIFO given as any input file hung every command.
        let d = dir("inputs");
        let fifo = d.join("patient.toml");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_input(&fifo, MAX_CONFIG_BYTES).unwrap_err().to_string();
        assert!(e.contains("FIFO") && e.contains("patient.toml"), "{e}");
        assert!(read_input(&d, MAX_CONFIG_BYTES).unwrap_err().to_string().contains("a directory"));
        assert!(read_input(Path::new("/dev/zero"), MAX_CONFIG_BYTES).unwrap_err().to_string().contains("a device"));
        let big = d.join("big.toml");
        std::fs::write(&big, vec![b'#'; 101]).unwrap();
        let e = read_input(&big, 100).unwrap_err().to_string();
        assert!(e.contains("101 bytes") && e.contains("limited to 100 bytes"), "{e}");
        assert_eq!(read_input(&big, 101).unwrap().len(), 101);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn one_path_in_two_roles_is_refused_naming_both() {
        let d = dir("roles");
        let (a, b) = (d.join("a.rrd"), d.join("b.toml"));
        std::fs::write(&b, "input").unwrap();
        let e = check_distinct(&[], &[("--save", &a), ("--state", &d.join("./a.rrd"))]).unwrap_err().to_string();
        assert!(e.contains("--save and --state") && e.contains("a.rrd"), "{e}");
        let e = check_distinct(&[("--resume", &b)], &[("--state", &b)]).unwrap_err().to_string();
        assert!(e.contains("--resume and --state"), "{e}");
        assert!(check_distinct(&[("--resume", &b)], &[("--save", &a)]).is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
