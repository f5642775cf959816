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

/// Where an instruction's expression is in the source (3.11+'s `co_positions`): the line, and
/// when the table records them the end line and the start and end columns, 0-based UTF-8 byte
/// offsets into their lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: Option<i32>,
    pub end_line: Option<i32>,
    pub column: Option<u32>,
    pub end_column: Option<u32>,
}

/// 3.11+ location table (CPython's Objects/locations.md). `unit` is the index of the instruction
/// in 2-byte code units from the start of the bytecode. An instruction of the prologue the
/// compiler puts before the first one with a location (`MAKE_CELL`, `COPY_FREE_VARS`,
/// `RETURN_GENERATOR`: a crash while a frame is being set up, such as a stack overflow in the
/// cell allocation) has no line of its own: it gets the `def` line, as a frame that has not
/// started (`unit` < 0) does.
pub fn locations_line(table: &[u8], firstlineno: i32, unit: i64) -> Option<i32> {
    locations_position(table, firstlineno, unit).line
}

/// The whole [`Position`] of instruction `unit` (see [`locations_line`]).
pub fn locations_position(table: &[u8], firstlineno: i32, unit: i64) -> Position {
    let line_only = |line| Position { line: Some(line), ..Default::default() };
    if unit < 0 {
        return line_only(firstlineno);
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
            13 | 14 => signed_varint(table, i + 1).0,
            _ => 0,
        };
        line = line.wrapping_add(delta);
        let end = start + len;
        if start <= unit && unit < end {
            return match code {
                15 if !located => line_only(firstlineno),
                15 => Position::default(),
                _ => Position { line: Some(line), ..columns(table, i, code, line) },
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
    Position::default()
}

/// The end line and columns of the entry at `i` (code `code`, on `line`).
fn columns(table: &[u8], i: usize, code: u8, line: i32) -> Position {
    let byte = |k: usize| table.get(i + k).copied().filter(|b| b & 0x80 == 0);
    let same_line =
        |column: Option<u32>, end: Option<u32>| Position { line: None, end_line: Some(line), column, end_column: end };
    match code {
        // Short form: the column's high bits in the code, its low bits and the length in one byte.
        0..=9 => match byte(1) {
            Some(b) => {
                let column = u32::from(code) * 8 + u32::from((b >> 4) & 7);
                same_line(Some(column), Some(column + u32::from(b & 15)))
            }
            None => same_line(None, None),
        },
        10..=12 => same_line(byte(1).map(u32::from), byte(2).map(u32::from)),
        14 => {
            let (_, at) = signed_varint(table, i + 1);
            let (end_delta, at) = varint_at(table, at);
            let (column, at) = varint_at(table, at);
            let (end_column, _) = varint_at(table, at);
            // Columns are stored plus one; 0 means not known.
            let col = |v: u64| v.checked_sub(1).and_then(|c| u32::try_from(c).ok());
            Position {
                line: None,
                end_line: Some(line.wrapping_add(end_delta.min(i32::MAX as u64) as i32)),
                column: col(column),
                end_column: col(end_column),
            }
        }
        _ => same_line(None, None),
    }
}

/// An unsigned varint of 6-bit chunks, least significant first, bit 6 meaning "more follows".
#[cfg(test)]
fn varint(table: &[u8], i: usize) -> u64 {
    varint_at(table, i).0
}

/// [`varint`] and the index just past it.
fn varint_at(table: &[u8], mut i: usize) -> (u64, usize) {
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
    (v, i)
}

/// A signed varint (sign in the lowest bit) and the index just past it.
fn signed_varint(table: &[u8], i: usize) -> (i32, usize) {
    let (v, next) = varint_at(table, i);
    let mag = (v >> 1).min(i32::MAX as u64) as i32;
    (if v & 1 != 0 { -mag } else { mag }, next)
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
    fn positions_in_every_form() {
        let mut t = vec![
            0x80 | (13 << 3), // unit 0: no columns, line +1
            2,
            0x80 | (2 << 3), // unit 1: short form, column 2*8+3 = 19, 4 long
            0x34,
            0x80 | (11 << 3), // unit 2: one-line form, line +1, columns 4..9
            4,
            9,
        ];
        encode::location(&mut t, 14, 1, 2); // unit 3: long form, line +2, columns 4..11 (stored +1)
        t.push(0x80 | (15 << 3)); // unit 4: none
        let p = |u| locations_position(&t, 10, u);
        assert_eq!(p(0), Position { line: Some(11), end_line: Some(11), column: None, end_column: None });
        assert_eq!(p(1), Position { line: Some(11), end_line: Some(11), column: Some(19), end_column: Some(23) });
        assert_eq!(p(2), Position { line: Some(12), end_line: Some(12), column: Some(4), end_column: Some(9) });
        assert_eq!(p(3), Position { line: Some(14), end_line: Some(14), column: Some(4), end_column: Some(11) });
        assert_eq!(p(4), Position::default());
        assert_eq!(p(-1).line, Some(10));
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
        for unit in [-1i64, 0, 5, 400] {
            let _ = locations_position(&junk, 1, unit);
        }
    }
}
