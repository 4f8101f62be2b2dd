//! How a container ended, in terms the agent can turn into a Mesos status update.

use std::fmt;

use mesos_core::task::{Reason, TaskState};

/// How the container's main process ended, when that is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal.
    Signal(i32),
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exited with status {c}"),
            ExitStatus::Signal(s) => write!(f, "terminated by signal {s} ({})", signal_name(*s)),
        }
    }
}

/// The terminal task state the runtime observed (a subset of Mesos' task states).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TerminalState {
    /// Exited 0 without being killed.
    Finished,
    /// Exited non-zero, was killed by something other than us, or hit a limit.
    Failed,
    /// Ended after [`crate::ContainerRuntime::kill`] was called.
    Killed,
    /// Gone while nobody watched (the agent was down) with no way to know how it ended.
    Lost,
}

/// Why the container ended, when the state alone does not say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TerminationReason {
    /// The command exited non-zero or died of a signal.
    CommandFailed,
    /// The kernel killed it for exceeding its memory limit.
    MemoryLimit,
    /// It was killed on request.
    KilledOnRequest,
    /// It vanished while the agent was down (found missing at recovery).
    VanishedWhileAgentDown,
    /// It exited after recovery; no parent could collect its exit status.
    ExitStatusUnknown,
    /// The container engine lost it (e.g. removed behind our back) while we watched.
    EngineLostContainer,
}

/// The end of a container: state, reason, exit status and a message for the status update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Termination {
    /// The terminal state.
    pub state: TerminalState,
    /// Why, when known; `None` for a clean finish.
    pub reason: Option<TerminationReason>,
    /// The exit status, when known.
    pub status: Option<ExitStatus>,
    /// A human-readable message, e.g. `Command exited with status 3`.
    pub message: String,
}

impl Termination {
    /// The usual mapping of an exit status when nobody asked for a kill and no limit was hit:
    /// 0 is FINISHED, anything else FAILED with the code or signal in the message.
    pub fn from_exit(status: ExitStatus) -> Self {
        match status {
            ExitStatus::Code(0) => Termination {
                state: TerminalState::Finished,
                reason: None,
                status: Some(status),
                message: "Command exited with status 0".into(),
            },
            _ => Termination {
                state: TerminalState::Failed,
                reason: Some(TerminationReason::CommandFailed),
                status: Some(status),
                message: format!("Command {status}"),
            },
        }
    }

    /// A container killed on request.
    pub fn killed(status: Option<ExitStatus>) -> Self {
        let message = match status {
            Some(s) => format!("Command killed on request; it {s}"),
            None => "Command killed on request".into(),
        };
        Termination {
            state: TerminalState::Killed,
            reason: Some(TerminationReason::KilledOnRequest),
            status,
            message,
        }
    }

    /// A container the kernel killed for exceeding its memory limit.
    pub fn memory_limit(
        status: Option<ExitStatus>,
        limit_bytes: Option<u64>,
        peak: Option<u64>,
    ) -> Self {
        let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
        let mut message = "Memory limit exceeded".to_string();
        if let Some(l) = limit_bytes {
            message.push_str(&format!(": requested {:.0} MB", mb(l)));
            if let Some(p) = peak {
                message.push_str(&format!(", maximum used {:.1} MB", mb(p)));
            }
        }
        Termination {
            state: TerminalState::Failed,
            reason: Some(TerminationReason::MemoryLimit),
            status,
            message,
        }
    }

    /// A container found missing at recovery.
    pub fn vanished(what: &str) -> Self {
        Termination {
            state: TerminalState::Lost,
            reason: Some(TerminationReason::VanishedWhileAgentDown),
            status: None,
            message: format!("{what} vanished while the agent was down"),
        }
    }

    /// Maps to the Mesos task state and reason the agent puts in its status update (the
    /// message goes into the update's `message`).
    ///
    /// Exit non-zero or by signal is `TASK_FAILED` with `REASON_COMMAND_EXECUTOR_FAILED` (what
    /// Mesos' command executor sends), a memory kill `TASK_FAILED` with
    /// `REASON_CONTAINER_LIMITATION_MEMORY`, a kill `TASK_KILLED`, a container gone while the agent
    /// was down `TASK_LOST` with `REASON_AGENT_RESTARTED` (the agent may turn LOST into GONE for
    /// partition-aware frameworks), and an exit after recovery without a collectable status
    /// `TASK_FAILED` with `REASON_EXECUTOR_TERMINATED`.
    pub fn to_mesos(&self) -> (TaskState, Option<Reason>) {
        let state = match self.state {
            TerminalState::Finished => TaskState::Finished,
            TerminalState::Failed => TaskState::Failed,
            TerminalState::Killed => TaskState::Killed,
            TerminalState::Lost => TaskState::Lost,
        };
        let reason = match self.reason {
            None | Some(TerminationReason::KilledOnRequest) => None,
            Some(TerminationReason::CommandFailed) => Some(Reason::CommandExecutorFailed),
            Some(TerminationReason::MemoryLimit) => Some(Reason::ContainerLimitationMemory),
            Some(TerminationReason::VanishedWhileAgentDown) => Some(Reason::AgentRestarted),
            Some(TerminationReason::ExitStatusUnknown)
            | Some(TerminationReason::EngineLostContainer) => Some(Reason::ExecutorTerminated),
        };
        (state, reason)
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_map_to_finished_and_failed_with_the_code() {
        let t = Termination::from_exit(ExitStatus::Code(0));
        assert_eq!(t.to_mesos(), (TaskState::Finished, None));
        let t = Termination::from_exit(ExitStatus::Code(3));
        assert_eq!(t.state, TerminalState::Failed);
        assert!(t.message.contains("status 3"), "{}", t.message);
        assert_eq!(
            t.to_mesos(),
            (TaskState::Failed, Some(Reason::CommandExecutorFailed))
        );
        let t = Termination::from_exit(ExitStatus::Signal(9));
        assert!(t.message.contains("SIGKILL"), "{}", t.message);
    }

    #[test]
    fn memory_and_vanished_carry_their_reasons() {
        let t = Termination::memory_limit(None, Some(32 << 20), Some(33 << 20));
        assert_eq!(
            t.to_mesos(),
            (TaskState::Failed, Some(Reason::ContainerLimitationMemory))
        );
        assert!(t.message.contains("requested 32 MB"), "{}", t.message);
        let t = Termination::vanished("process 42");
        assert_eq!(
            t.to_mesos(),
            (TaskState::Lost, Some(Reason::AgentRestarted))
        );
        assert_eq!(
            Termination::killed(None).to_mesos(),
            (TaskState::Killed, None)
        );
    }
}
