//! The supervisor: the only module that calls ptrace, waitpid, kill or fork.
