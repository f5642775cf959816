//! Instruction offset → source line, for the three line-table formats CPython has used.
//! All decoders are total: any byte string gives an answer (or None) in time linear in its length.

/// ≤3.9 `co_lnotab`: pairs of (byte-offset delta, line delta). `addr` is the byte offset of the
/// instruction (`f_lasti`). The line delta is unsigned in 2.7 and signed from 3.6 on.
pub fn lnotab_line(table: &[u8], firstlineno: i32, addr: i64, signed: bool) -> i32 {
    let mut line = firstlineno;
    let mut at: i64 = 0;
    for pair in table.chunks_exact(2) {
        at += i64::from(pair[0]);
        if at > addr {
            break;
        }
        let delta = if signed { i32::from(pair[1] as i8) } else { i32::from(pair[1]) };
        line = line.wrapping_add(delta);
    }
    line
}

/// 3.10 `co_linetable`: pairs of (byte delta, signed line delta) describing consecutive ranges;
/// a line delta of -128 marks a range with no line. `addr` is a byte offset (`f_lasti * 2`).
pub fn linetable310_line(table: &[u8], firstlineno: i32, addr: i64) -> Option<i32> {
    if addr < 0 {
        return Some(firstlineno);
    }
    let mut computed = firstlineno;
    let mut end: i64 = 0;
    for pair in table.chunks_exact(2) {
        end += i64::from(pair[0]);
        let ldelta = pair[1] as i8;
        let line = if ldelta == -128 {
            None
        } else {
            computed = computed.wrapping_add(i32::from(ldelta));
            Some(computed)
        };
        // Ranges are consecutive from 0, so the first one ending past `addr` contains it
        // (empty ranges never do).
        if end > addr {
            return line;
        }
    }
    None
}

/// 3.11+ location table (CPython's Objects/locations.md). `unit` is the index of the instruction
/// in 2-byte code units from the start of the bytecode. An instruction of the prologue the
/// compiler puts before the first one with a location (`MAKE_CELL`, `COPY_FREE_VARS`,
/// `RETURN_GENERATOR`: a crash while a frame is being set up, such as a stack overflow in the
/// cell allocation) has no line of its own: it gets the `def` line, as a frame that has not
/// started (`unit` < 0) does.
pub fn locations_line(table: &[u8], firstlineno: i32, unit: i64) -> Option<i32> {
    if unit < 0 {
        return Some(firstlineno);
    }
    let mut located = false;
    let mut line = firstlineno;
    let mut start: i64 = 0;
    let mut i = 0usize;
    while i < table.len() {
        let b = table[i];
        if b & 0x80 == 0 {
            // Not the first byte of an entry: the table is corrupt here; resynchronise.
            i += 1;
            continue;
        }
        let code = (b >> 3) & 15;
        let len = i64::from(b & 7) + 1;
        let delta = match code {
            0..=9 => 0,
            10..=12 => i32::from(code) - 10,
            13 | 14 => signed_varint(table, i + 1),
            _ => 0,
        };
        line = line.wrapping_add(delta);
        let end = start + len;
        if start <= unit && unit < end {
            return match code {
                15 if !located => Some(firstlineno),
                15 => None,
                _ => Some(line),
            };
        }
        located |= code != 15;
        start = end;
        // Skip this entry's remaining bytes: the next entry starts at the next byte with bit 7 set.
        i += 1;
        while i < table.len() && table[i] & 0x80 == 0 {
            i += 1;
        }
    }
    None
}

/// An unsigned varint of 6-bit chunks, least significant first, bit 6 meaning "more follows".
fn varint(table: &[u8], mut i: usize) -> u64 {
    let mut v: u64 = 0;
    let mut shift = 0u32;
    while let Some(&b) = table.get(i) {
        if b & 0x80 != 0 || shift > 60 {
            break;
        }
        v |= u64::from(b & 63) << shift;
        shift += 6;
        i += 1;
        if b & 64 == 0 {
            break;
        }
    }
    v
}

fn signed_varint(table: &[u8], i: usize) -> i32 {
    let v = varint(table, i);
    let mag = (v >> 1).min(i32::MAX as u64) as i32;
    if v & 1 != 0 {
        -mag
    } else {
        mag
    }
}

/// Encoders used by tests to build tables the way CPython's compiler does.
pub mod encode {
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 64 {
            out.push(64 | (v & 63) as u8);
            v >>= 6;
        }
        out.push(v as u8);
    }
    fn svarint(out: &mut Vec<u8>, v: i64) {
        let u = if v < 0 { ((-v as u64) << 1) | 1 } else { (v as u64) << 1 };
        varint(out, u);
    }

    /// One 3.11+ location entry covering `units` code units (1–8) whose line is `delta` away
    /// from the previous one, in the form `code` (0–15) asks for.
    pub fn location(out: &mut Vec<u8>, code: u8, units: u8, delta: i64) {
        assert!((1..=8).contains(&units));
        out.push(0x80 | (code << 3) | (units - 1));
        match code {
            0..=9 => {
                assert_eq!(delta, 0);
                out.push(0x05); // column
            }
            10..=12 => {
                assert_eq!(delta, i64::from(code) - 10);
                out.push(4);
                out.push(9);
            }
            13 => svarint(out, delta),
            14 => {
                svarint(out, delta);
                varint(out, 0); // end line delta
                varint(out, 5); // start column + 1
                varint(out, 12); // end column + 1
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lnotab_signed_and_unsigned() {
        // bytes 0..6 → line 10, 6..10 → 12, 10.. → 11 (signed -1) or 10+2+255 (unsigned).
        let t = [6u8, 2, 4, 0xff];
        assert_eq!(lnotab_line(&t, 10, 0, true), 10);
        assert_eq!(lnotab_line(&t, 10, 5, true), 10);
        assert_eq!(lnotab_line(&t, 10, 6, true), 12);
        assert_eq!(lnotab_line(&t, 10, 9, true), 12);
        assert_eq!(lnotab_line(&t, 10, 10, true), 11);
        assert_eq!(lnotab_line(&t, 10, 10, false), 10 + 2 + 255);
        // Large jumps are split into several pairs: (255, 0) (45, 3).
        let t = [255u8, 0, 45, 3];
        assert_eq!(lnotab_line(&t, 1, 299, true), 1);
        assert_eq!(lnotab_line(&t, 1, 300, true), 4);
        assert_eq!(lnotab_line(&[], 7, 100, true), 7);
        assert_eq!(lnotab_line(&[1], 7, 100, true), 7, "odd trailing byte ignored");
    }

    #[test]
    fn linetable_310() {
        // [0,4) line +1 → 11; [4,10) no line; [10,14) line +3 → 14; empty range +1; [14,20) +1 → 16.
        let t = [4u8, 1, 6, 0x80, 4, 3, 0, 1, 6, 1];
        assert_eq!(linetable310_line(&t, 10, -2), Some(10));
        assert_eq!(linetable310_line(&t, 10, 0), Some(11));
        assert_eq!(linetable310_line(&t, 10, 3), Some(11));
        assert_eq!(linetable310_line(&t, 10, 4), None);
        assert_eq!(linetable310_line(&t, 10, 9), None);
        assert_eq!(linetable310_line(&t, 10, 10), Some(14));
        assert_eq!(linetable310_line(&t, 10, 14), Some(16));
        assert_eq!(linetable310_line(&t, 10, 19), Some(16));
        assert_eq!(linetable310_line(&t, 10, 20), None);
    }

    #[test]
    fn the_prologue_before_the_first_location_is_the_def_line() {
        let mut t = Vec::new();
        encode::location(&mut t, 15, 1, 0); // unit 0: MAKE_CELL, no location
        encode::location(&mut t, 15, 1, 0); // unit 1: COPY_FREE_VARS, no location
        encode::location(&mut t, 13, 1, 1); // unit 2: RESUME, line 8
        encode::location(&mut t, 15, 1, 0); // unit 3: no location after a located one
        encode::location(&mut t, 13, 1, 1); // unit 4: line 9
        assert_eq!(locations_line(&t, 7, 0), Some(7));
        assert_eq!(locations_line(&t, 7, 1), Some(7));
        assert_eq!(locations_line(&t, 7, 2), Some(8));
        assert_eq!(locations_line(&t, 7, 3), None);
        assert_eq!(locations_line(&t, 7, 4), Some(9));
    }

    #[test]
    fn location_table_every_form() {
        let mut t = Vec::new();
        encode::location(&mut t, 13, 1, 1); // unit 0: RESUME-like, line first+1 = 21
        encode::location(&mut t, 0, 2, 0); // units 1-2: same line 21
        encode::location(&mut t, 11, 3, 1); // units 3-5: 22
        encode::location(&mut t, 15, 1, 0); // unit 6: no line
        encode::location(&mut t, 14, 4, 300); // units 7-10: 322
        encode::location(&mut t, 13, 2, -310); // units 11-12: 12
        encode::location(&mut t, 12, 8, 2); // units 13-20: 14
        encode::location(&mut t, 10, 1, 0); // unit 21: 14
        let l = |u| locations_line(&t, 20, u);
        assert_eq!(l(-1), Some(20));
        assert_eq!(l(0), Some(21));
        assert_eq!(l(1), Some(21));
        assert_eq!(l(2), Some(21));
        assert_eq!(l(3), Some(22));
        assert_eq!(l(5), Some(22));
        assert_eq!(l(6), None);
        assert_eq!(l(7), Some(322));
        assert_eq!(l(10), Some(322));
        assert_eq!(l(11), Some(12));
        assert_eq!(l(13), Some(14));
        assert_eq!(l(20), Some(14));
        assert_eq!(l(21), Some(14));
        assert_eq!(l(22), None);
    }

    #[test]
    fn decoders_survive_garbage() {
        let junk: Vec<u8> = (0..997u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for addr in [-5i64, 0, 3, 100, 10_000] {
            let _ = lnotab_line(&junk, 1, addr, true);
            let _ = linetable310_line(&junk, 1, addr);
            let _ = locations_line(&junk, 1, addr);
        }
        let _ = varint(&[0x7f; 40], 0);
        let _ = signed_varint(&[0x7f; 40], 0);
    }
}
