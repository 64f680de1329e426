//! Text without `core::fmt`: decimal numbers and error messages from pieces.
//!
//! Everything the browser SDK runs builds its text with these instead of
//! `format!`, `write!` or `to_string` on numbers: leaving out `core::fmt`'s machinery (argument
//! tables, padding, integer formatting) took 1.5 KB off the gzipped package, which has a size
//! budget (docs/SIZE.md). Server-only code may format as it likes.

/// Appends the decimal digits of `n`.
pub fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // ASCII digits pushed as chars: no UTF-8 validation code.
    out.extend(digits[start..].iter().map(|&digit| char::from(digit)));
}

/// The decimal digits of `n`.
pub fn decimal(n: u64) -> String {
    let mut out = String::new();
    push_decimal(&mut out, n);
    out
}

/// The pieces one after the other: what `[&str]::concat` does, in a plain loop. The standard
/// one (`join_generic_copy`, shared with `join`) has unrolled copies for short separators and
/// was 948 B of the module's code; this one is about a tenth of that.
pub fn concat(parts: &[&str]) -> String {
    let mut len = 0;
    for part in parts {
        len += part.len();
    }
    let mut out = String::with_capacity(len);
    for part in parts {
        out.push_str(part);
    }
    out
}

/// An error whose message is built from pieces (`concat`) rather than formatted; code the
/// browser runs asks for [`Message::message`] instead of `to_string`, which would bring
/// `core::fmt::write` along. `Display` comes from it through [`message_display!`].
pub trait Message {
    /// The error as a sentence.
    fn message(&self) -> String;
}

/// Implements `Display` (the message) and `std::error::Error` for [`Message`] types.
macro_rules! message_display {
    ($($ty:ty),* $(,)?) => {
        $(
            impl std::fmt::Display for $ty {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str(&$crate::text::Message::message(self))
                }
            }

            impl std::error::Error for $ty {}
        )*
    };
}
pub(crate) use message_display;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_matches_std() {
        for n in [0, 7, 10, 99, 1_700_000_000_000, u64::MAX] {
            assert_eq!(decimal(n), n.to_string());
        }
    }
}
