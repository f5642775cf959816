//! The kernel's 128-byte `siginfo_t` (x86_64), decoded into a [`SignalInfo`] and encoded back:
//! what PTRACE_GETSIGINFO returns and what a core's NT_SIGINFO note holds.

use super::SignalInfo;

/// Size of `siginfo_t`.
pub(crate) const SIGINFO_SIZE: usize = 128;

const SIGILL: i32 = 4;
const SIGFPE: i32 = 8;
const SIGSEGV: i32 = 11;
const SIGBUS: i32 = 7;
const SIGSYS: i32 = 31;
/// si_code of a signal the kernel sent itself (not a fault).
const SI_KERNEL: i32 = 0x80;
/// SIGSYS si_code for a seccomp filter.
const SYS_SECCOMP: i32 = 1;

/// Decodes a raw siginfo: signo@0, errno@4, code@8, then the union at 16.
pub(crate) fn decode(raw: &[u8; SIGINFO_SIZE]) -> SignalInfo {
    let i32_at = |o: usize| i32::from_le_bytes([raw[o], raw[o + 1], raw[o + 2], raw[o + 3]]);
    let u64_at = |o: usize| u64::from_le_bytes(raw[o..o + 8].try_into().unwrap_or([0; 8]));
    let signo = i32_at(0);
    let code = i32_at(8);
    let mut info = SignalInfo { signo, code, ..Default::default() };
    let kernel_fault = info.is_fault();
    match signo {
        SIGSEGV | SIGBUS | SIGILL | SIGFPE if kernel_fault || code == SI_KERNEL => {
            info.addr = Some(u64_at(16));
        }
        SIGSYS if code == SYS_SECCOMP => {
            info.addr = Some(u64_at(16));
            info.syscall = Some(i32_at(24));
        }
        _ => {}
    }
    if code <= 0 {
        // kill/tkill/sigqueue: si_pid@16, si_uid@20.
        info.sender_pid = Some(i32_at(16));
    }
    info
}

/// Encodes what a [`SignalInfo`] holds back into a raw siginfo (for a core's NT_SIGINFO).
pub fn encode(info: &SignalInfo) -> [u8; SIGINFO_SIZE] {
    let mut raw = [0u8; SIGINFO_SIZE];
    raw[0..4].copy_from_slice(&info.signo.to_le_bytes());
    raw[8..12].copy_from_slice(&info.code.to_le_bytes());
    if let Some(a) = info.addr {
        raw[16..24].copy_from_slice(&a.to_le_bytes());
    }
    if let Some(s) = info.syscall {
        raw[24..28].copy_from_slice(&s.to_le_bytes());
    }
    if let (Some(p), None) = (info.sender_pid, info.addr) {
        raw[16..20].copy_from_slice(&p.to_le_bytes());
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let cases = [
            SignalInfo { signo: 11, code: 1, addr: Some(0x10), ..Default::default() },
            SignalInfo { signo: 6, code: -6, sender_pid: Some(42), ..Default::default() },
            SignalInfo { signo: 31, code: 1, addr: Some(0x7f00), syscall: Some(39), ..Default::default() },
        ];
        for c in cases {
            let d = decode(&encode(&c));
            assert_eq!(
                (d.signo, d.code, d.addr, d.sender_pid, d.syscall),
                (c.signo, c.code, c.addr, c.sender_pid, c.syscall)
            );
        }
    }
}
