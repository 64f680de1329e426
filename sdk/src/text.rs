//! Text without `core::fmt`: decimal numbers and `Display` from pieces.
//!
//! Everything the browser SDK runs builds its text with these (and `concat`) instead of
//! `format!`, `write!` or `to_string` on numbers: `core::fmt`'s machinery (argument tables,
//! padding, integer formatting) is about 3 KB of wasm, and the SDK has a size budget
//! (ARCHITECTURE.md, "Browser build"). Server-only code may format as it likes.

use std::fmt;

/// An unsigned integer's decimal digits, on the stack.
#[derive(Clone, Copy, Debug)]
pub struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    /// The digits as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.digits[self.start..]).unwrap_or("0")
    }
}

/// The decimal digits of `n`.
pub fn decimal(mut n: u64) -> Decimal {
    let mut out = Decimal {
        digits: [b'0'; 20],
        start: 20,
    };
    loop {
        out.start -= 1;
        out.digits[out.start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return out;
        }
    }
}

/// Writes `pieces` one after another: a `Display` impl's body.
pub fn write_pieces(f: &mut fmt::Formatter<'_>, pieces: &[&str]) -> fmt::Result {
    pieces.iter().try_for_each(|piece| f.write_str(piece))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_matches_std() {
        for n in [0, 7, 10, 99, 1_700_000_000_000, u64::MAX] {
            assert_eq!(decimal(n).as_str(), n.to_string());
        }
    }
}
