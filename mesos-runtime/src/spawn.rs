//! Starting a task's process without forking the agent, already inside its cgroups.
//!
//! A task must be in its cgroups before it runs any code of its own, or it could fork children
//! that escape its limits. std can only do that with a `pre_exec` hook, which makes it `fork`
//! the agent: the page tables of the whole (multi-threaded, large) agent are copied for every
//! launch, and every page the agent writes afterwards takes a copy-on-write fault with a TLB
//! shootdown to the other cores. On cgroup v1 there is no `CLONE_INTO_CGROUP`, and glibc 2.36 has
//! no `posix_spawnattr_setcgroup_np`.
//!
//! So this module does what glibc's `posix_spawn` does, plus the cgroup join:
//! `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` onto a separate stack. The child shares the
//! agent's memory (nothing is copied) and the calling thread sleeps until the child has called
//! `execve` or exited. Before `execve` the child only makes async-signal-safe system calls on
//! values the parent prepared: reset signal handlers, write `0` into each pre-opened
//! `cgroup.procs`, `setpgid`, `dup2` its stdio, `chdir` into the sandbox, drop to the task's user,
//! unblock signals. A failure is written into the shared argument block (the parent reads it
//! once the child is gone) and the child `_exit`s, so `spawn` returns the error as
//! `Command::spawn` would.
//!
//! The parent waits through the pidfd (`AsyncFd`, readable once the process has exited) and
//! reaps with `waitpid` on that one pid.
//!
//! This is the only module of the crate with `unsafe` code; every block says why it is sound.

#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ffi::{c_int, c_void, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use nix::unistd::{Gid, Uid};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Bytes of stack for the child before `execve` (it runs a handful of small frames), plus one
/// guard page below it.
const CHILD_STACK: usize = 64 * 1024;

/// What to start.
pub(crate) struct SpawnSpec<'a> {
    /// The program: a path, or a name looked up in `env`'s `PATH` (as `execvp` would).
    pub program: &'a str,
    /// `argv[1..]`.
    pub args: &'a [String],
    /// The complete environment.
    pub env: &'a [(String, String)],
    /// The working directory.
    pub cwd: &'a Path,
    /// Standard output and error (stdin is `/dev/null`).
    pub stdout: &'a File,
    /// See `stdout`.
    pub stderr: &'a File,
    /// Open `cgroup.procs` files the child writes `0` into before `execve`.
    pub cgroup_procs: &'a [File],
    /// Switch to this user and group before `execve`.
    pub run_as: Option<(Uid, Gid)>,
}

/// A process started by [`spawn`]: its pid, and its pidfd to wait on.
pub(crate) struct Child {
    pid: i32,
    pidfd: Option<AsyncFd<OwnedFd>>,
    reaped: bool,
    /// A background reaper's copy: dropping it does not start another reaper.
    detached: bool,
}

/// Which preparation step of the child failed (reported in the spawn error).
const STEPS: [&str; 8] = [
    "",
    "joining the cgroup",
    "creating the process group",
    "redirecting stdio",
    "changing into the sandbox",
    "dropping supplementary groups",
    "switching group or user",
    "executing the program",
];

/// The argument block the child reads (prepared by the parent) and writes its error into.
/// Everything behind the pointers is owned by [`spawn`]'s frame, which outlives the child's
/// use of it (the parent thread is suspended until the child has exec'd or exited).
#[repr(C)]
struct ChildArgs {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    /// stdin, stdout, stderr; all >= 3, so no `dup2` clobbers a later source.
    stdio: [RawFd; 3],
    cgroup_fds: *const RawFd,
    cgroup_fds_len: usize,
    /// -1: keep.
    uid: i64,
    gid: i64,
    drop_groups: bool,
    /// Set by the child on failure: errno and the index into [`STEPS`].
    errno: c_int,
    step: c_int,
}

/// A reusable child stack per thread: `mmap`ing and `munmap`ing one per launch would cost a
/// TLB shootdown to every core running agent threads, which is what we are avoiding.
struct Stack {
    base: *mut c_void,
    len: usize,
}

impl Stack {
    fn new() -> io::Result<Stack> {
        let page = 4096;
        let len = CHILD_STACK + page;
        // SAFETY: an anonymous private mapping; the result is checked before use.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the lowest page of our own mapping becomes the guard page. If this fails the
        // stack just has no guard page.
        unsafe { libc::mprotect(base, page, libc::PROT_NONE) };
        Ok(Stack { base, len })
    }

    /// The initial stack pointer (the stack grows down), 16-byte aligned.
    fn top(&self) -> *mut c_void {
        (self.base as usize + self.len) as *mut c_void
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own mapping, not in use (the thread is exiting).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

thread_local! {
    static STACK: RefCell<Option<Stack>> = const { RefCell::new(None) };
}

fn cstring(s: impl AsRef<[u8]>) -> io::Result<CString> {
    CString::new(s.as_ref()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "nul byte found in the program, an argument or the environment",
        )
    })
}

/// Resolves `program` as `execvp` would: a name with a `/` is used as is, a bare name is looked
/// up in `PATH` (the task's, else the default) for an executable regular file.
fn resolve(program: &str, env: &[(String, String)]) -> io::Result<PathBuf> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or(crate::process::DEFAULT_PATH);
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(program);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("{program} not found in PATH {path}"),
    ))
}

/// `fd` itself if it is above stdio's numbers, else a close-on-exec duplicate that is (kept
/// alive in `keep`), so the child's `dup2`s onto 0, 1 and 2 never overwrite a later source.
fn above_stdio(fd: RawFd, keep: &mut Vec<OwnedFd>) -> io::Result<RawFd> {
    if fd > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we hold open; the new descriptor is owned below.
    let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `dup` is a fresh descriptor nobody else owns.
    keep.push(unsafe { OwnedFd::from_raw_fd(dup) });
    Ok(dup)
}

/// Blocks every signal (glibc's internal ones too) in the calling thread; returns the old mask.
fn block_all_signals() -> u64 {
    let all: u64 = !0;
    let mut old: u64 = 0;
    // SAFETY: rt_sigprocmask with the kernel's 8-byte signal set, both pointers valid.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            &all as *const u64,
            &mut old as *mut u64,
            8usize,
        )
    };
    old
}

fn set_signal_mask(mask: u64) {
    // SAFETY: as above.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &mask as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
}

/// Starts the process. Returns once it has exec'd (or with the reason it could not).
pub(crate) fn spawn(spec: &SpawnSpec<'_>) -> io::Result<Child> {
    let path = cstring(resolve(spec.program, spec.env)?.as_os_str().as_bytes())?;
    let mut argv_owned = Vec::with_capacity(spec.args.len() + 1);
    argv_owned.push(cstring(spec.program)?);
    for a in spec.args {
        argv_owned.push(cstring(a)?);
    }
    let mut envp_owned = Vec::with_capacity(spec.env.len());
    for (k, v) in spec.env {
        let mut kv = Vec::with_capacity(k.len() + v.len() + 1);
        kv.extend_from_slice(k.as_bytes());
        kv.push(b'=');
        kv.extend_from_slice(v.as_bytes());
        envp_owned.push(cstring(kv)?);
    }
    let argv: Vec<*const libc::c_char> = argv_owned
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = envp_owned
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let cwd = cstring(spec.cwd.as_os_str().as_bytes())?;
    let stdin = File::open("/dev/null")?;
    let mut dups = Vec::new();
    let stdio = [
        above_stdio(stdin.as_raw_fd(), &mut dups)?,
        above_stdio(spec.stdout.as_raw_fd(), &mut dups)?,
        above_stdio(spec.stderr.as_raw_fd(), &mut dups)?,
    ];
    let cgroup_fds: Vec<RawFd> = spec.cgroup_procs.iter().map(AsRawFd::as_raw_fd).collect();
    // SAFETY: getuid cannot fail.
    let am_root = unsafe { libc::getuid() } == 0;
    let mut args = ChildArgs {
        path: path.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: cwd.as_ptr(),
        stdio,
        cgroup_fds: cgroup_fds.as_ptr(),
        cgroup_fds_len: cgroup_fds.len(),
        uid: spec.run_as.map_or(-1, |(u, _)| i64::from(u.as_raw())),
        gid: spec.run_as.map_or(-1, |(_, g)| i64::from(g.as_raw())),
        drop_groups: spec.run_as.is_some() && am_root,
        errno: 0,
        step: 0,
    };

    let mut pidfd: c_int = -1;
    let pid = STACK.with(|cell| -> io::Result<c_int> {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(Stack::new()?);
        }
        let Some(stack) = slot.as_ref() else {
            return Err(io::Error::other("no child stack"));
        };
        // Signals stay blocked from before the clone until the child has reset its handlers,
        // so no handler of the agent ever runs on the child's side of the shared memory.
        let old_mask = block_all_signals();
        let base = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD;
        let args_ptr = (&mut args as *mut ChildArgs).cast::<c_void>();
        // SAFETY: glibc's clone runs `child_main(&mut args)` in a new process on `stack`,
        // sharing our memory (CLONE_VM); CLONE_VFORK suspends this thread until the child has
        // exec'd or exited, so `args`, the strings it points to and the stack stay valid and
        // unused by anyone else while the child runs. CLONE_PIDFD stores a close-on-exec pidfd
        // in `pidfd`. The child only makes async-signal-safe calls (see `child_main`).
        let mut pid = unsafe {
            libc::clone(
                child_main,
                stack.top(),
                base | libc::CLONE_PIDFD,
                args_ptr,
                &mut pidfd as *mut c_int,
            )
        };
        let mut clone_err = io::Error::last_os_error();
        if pid < 0 && clone_err.raw_os_error() == Some(libc::EINVAL) {
            // A kernel before 5.2 has no CLONE_PIDFD: start it anyway and poll for its exit.
            pidfd = -1;
            // SAFETY: as above, without the pidfd.
            pid = unsafe { libc::clone(child_main, stack.top(), base, args_ptr) };
            clone_err = io::Error::last_os_error();
        }
        set_signal_mask(old_mask);
        if pid < 0 {
            return Err(clone_err);
        }
        Ok(pid)
    })?;
    // SAFETY: CLONE_PIDFD gave us this descriptor (or left -1, checked).
    let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
    // SAFETY: the child is gone from our memory (exec'd or exited); these fields were written,
    // if at all, before that. Volatile so the compiler cannot assume they kept their values.
    let (errno, step) = unsafe {
        (
            std::ptr::read_volatile(&args.errno),
            std::ptr::read_volatile(&args.step),
        )
    };
    drop((argv_owned, envp_owned, dups, stdin));
    if errno != 0 {
        // The child exited with 127 without exec'ing: collect it.
        let mut status = 0;
        // SAFETY: waitpid on our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let os = io::Error::from_raw_os_error(errno);
        let what = STEPS.get(step as usize).copied().unwrap_or("preparing");
        return Err(io::Error::new(os.kind(), format!("{what}: {os}")));
    }
    // The process runs now, so a pidfd that cannot be registered only means polling.
    let pidfd = pidfd.and_then(|fd| {
        // SAFETY: an `OwnedFd` stays open and the same descriptor for as long as it is owned.
        unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
            .map_err(|e| tracing::warn!(pid, error = %e, "cannot watch the pidfd; polling"))
            .ok()
    });
    Ok(Child {
        pid,
        pidfd,
        reaped: false,
        detached: false,
    })
}

/// Records a failure and leaves the child; runs in the child only.
///
/// # Safety
/// Only called from `child_main`, with its argument block.
unsafe fn fail(a: *mut ChildArgs, step: c_int) -> ! {
    // SAFETY: errno is thread-local storage of the (suspended) parent thread, which the child
    // shares; reading it is a plain load. The argument block is valid (see `spawn`).
    unsafe {
        (*a).errno = (*libc::__errno_location()).max(1);
        (*a).step = step;
        libc::_exit(127)
    }
}

/// A raw system call's result: `true` on success.
fn ok(r: libc::c_long) -> bool {
    r >= 0
}

/// The child between `clone` and `execve`. It shares the agent's memory, so it makes only
/// async-signal-safe calls (no allocation, no locks, no panics) on values prepared by the
/// parent, and never returns.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    let a = arg.cast::<ChildArgs>();
    // SAFETY: `arg` is the argument block of `spawn`, valid until this process execs or exits.
    // Everything else is a raw system call (no glibc cancellation or thread bookkeeping, which
    // would touch the agent thread's state; glibc's `setuid` would even try to synchronise the
    // agent's threads), except `sigaction`, an async-signal-safe wrapper, and `_exit`.
    unsafe {
        // Signal handlers are the agent's code on the agent's memory: back to the defaults
        // (ignored signals stay ignored, except SIGPIPE, which std also resets for children).
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            let handled = old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN;
            if handled || (sig == libc::SIGPIPE && old.sa_sigaction != libc::SIG_DFL) {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        let fds = std::slice::from_raw_parts((*a).cgroup_fds, (*a).cgroup_fds_len);
        for &fd in fds {
            if libc::syscall(libc::SYS_write, fd, b"0".as_ptr(), 1usize) != 1 {
                fail(a, 1);
            }
        }
        if !ok(libc::syscall(libc::SYS_setpgid, 0, 0)) {
            fail(a, 2);
        }
        let stdio = (*a).stdio;
        for (target, fd) in stdio.into_iter().enumerate() {
            // Every source is above 2 (see `above_stdio`), so dup3 never sees equal numbers.
            if !ok(libc::syscall(libc::SYS_dup3, fd, target as c_int, 0)) {
                fail(a, 3);
            }
        }
        if !ok(libc::syscall(libc::SYS_chdir, (*a).cwd)) {
            fail(a, 4);
        }
        if (*a).drop_groups
            && !ok(libc::syscall(
                libc::SYS_setgroups,
                0usize,
                std::ptr::null::<libc::gid_t>(),
            ))
        {
            fail(a, 5);
        }
        if (*a).gid >= 0 && !ok(libc::syscall(libc::SYS_setgid, (*a).gid as libc::gid_t)) {
            fail(a, 6);
        }
        if (*a).uid >= 0 && !ok(libc::syscall(libc::SYS_setuid, (*a).uid as libc::uid_t)) {
            fail(a, 6);
        }
        set_signal_mask(0);
        libc::syscall(libc::SYS_execve, (*a).path, (*a).argv, (*a).envp);
        fail(a, 7)
    }
}

impl Child {
    /// The process id.
    pub(crate) fn id(&self) -> i32 {
        self.pid
    }

    /// Collects the exit status if the process has exited.
    fn try_reap(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.reaped {
            return Err(io::Error::other("already reaped"));
        }
        let mut status = 0;
        loop {
            // SAFETY: waitpid on our own child, with a valid status pointer.
            let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if r == self.pid {
                self.reaped = true;
                return Ok(Some(ExitStatus::from_raw(status)));
            }
            if r == 0 {
                return Ok(None);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Waits for the process to exit and reaps it.
    pub(crate) async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            if let Some(status) = self.try_reap()? {
                return Ok(status);
            }
            match &self.pidfd {
                Some(fd) => {
                    let mut ready = fd.readable().await?;
                    ready.clear_ready();
                }
                // No pidfd (never on the kernels we run on): poll.
                None => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
    }
}

impl Drop for Child {
    /// A child dropped unreaped (its runtime went away) is reaped in the background once it
    /// exits, so it does not stay a zombie of the agent.
    fn drop(&mut self) {
        if self.reaped || self.detached || matches!(self.try_reap(), Ok(Some(_))) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut rest = Child {
            pid: self.pid,
            pidfd: self.pidfd.take(),
            reaped: false,
            detached: true,
        };
        self.reaped = true;
        handle.spawn(async move {
            let _ = rest.wait().await;
        });
    }
}
