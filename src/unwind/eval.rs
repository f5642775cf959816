//! A small driver for gimli's DWARF expression evaluator: it answers the evaluator's questions
//! (a register, a word of memory, a relocated address) from one frame's registers and the
//! process's memory, and refuses what a CFI expression has no business asking.

use gimli::{Encoding, EvaluationResult, Expression, Location, Value};

use super::cfi::Slice;
use super::error::ExpressionError;
use crate::arch::DwarfRegs;
use crate::process::Memory;

/// Evaluation steps allowed per expression (each resume counts one).
const MAX_RESUMES: usize = 64;
/// Operations gimli may execute per expression (guards against branch loops).
const MAX_OPS: u32 = 1000;

/// Evaluates a CFI expression to a value (for CFA and `val_expression` rules) or an address (for
/// `expression` rules; the caller reads it). `push` is the value DWARF puts on the stack first
/// (the CFA for register rules, nothing for the CFA rule).
pub(crate) fn evaluate(
    expr: &Expression<Slice<'_>>,
    encoding: Encoding,
    regs: &DwarfRegs,
    memory: &dyn Memory,
    push: Option<u64>,
    bias: u64,
) -> Result<u64, ExpressionError> {
    let mut eval = (*expr).evaluation(encoding);
    eval.set_max_iterations(MAX_OPS);
    if let Some(v) = push {
        eval.set_initial_value(v);
    }
    let err = ExpressionError::Gimli;
    let mut state = eval.evaluate().map_err(err)?;
    let mut resumes = 0usize;
    loop {
        resumes += 1;
        if resumes > MAX_RESUMES {
            return Err(ExpressionError::TooManyInputs);
        }
        state = match state {
            EvaluationResult::Complete => break,
            EvaluationResult::RequiresMemory { address, size, .. } => {
                let size = (size as usize).min(8);
                let mut buf = [0u8; 8];
                if memory.read_partial(address, &mut buf[..size]) != size {
                    return Err(ExpressionError::Unreadable(address));
                }
                eval.resume_with_memory(Value::Generic(u64::from_le_bytes(buf))).map_err(err)?
            }
            EvaluationResult::RequiresRegister { register, .. } => {
                let v = regs
                    .get(register.0 as usize)
                    .copied()
                    .flatten()
                    .ok_or(ExpressionError::RegisterUnknown(register.0))?;
                eval.resume_with_register(Value::Generic(v)).map_err(err)?
            }
            EvaluationResult::RequiresRelocatedAddress(a) => {
                eval.resume_with_relocated_address(a.wrapping_add(bias)).map_err(err)?
            }
            other => return Err(ExpressionError::Unavailable(format!("{other:?}"))),
        };
    }
    let pieces = eval.result();
    match pieces.first().map(|p| &p.location) {
        Some(Location::Address { address }) if pieces.len() == 1 => Ok(*address),
        Some(Location::Value { value }) if pieces.len() == 1 => value.to_u64(u64::MAX).map_err(err),
        Some(Location::Register { register }) if pieces.len() == 1 => {
            regs.get(register.0 as usize).copied().flatten().ok_or(ExpressionError::ResultRegisterUnknown(register.0))
        }
        _ => Err(ExpressionError::NoSingleWord),
    }
}
