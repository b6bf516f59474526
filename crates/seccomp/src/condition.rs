//! One OCI argument comparison (`syscalls[i].args[j]`) -> one seccompiler condition.
//!
//! Width: seccomp hands the filter every argument as a 64-bit value, and libseccomp
//! compares all 64 bits on 64-bit architectures. Comparing only the low 32 bits
//! (seccompiler's `Dword`) would be wrong for pointers, sizes and offsets: `EQ 0` would
//! also accept `0x1_0000_0000`. So comparisons are `Qword`, with one exception that is
//! provably equivalent and shorter: `MASKED_EQ` with a mask that fits in 32 bits, where
//! the masked high half is always zero on both sides.

use oci_spec::runtime::{LinuxSeccompArg, LinuxSeccompOperator as Op};
use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition};

use crate::error::SeccompError;

/// seccomp_data carries six syscall arguments.
const MAX_ARG_INDEX: usize = 5;

/// Builds the condition for `linux.seccomp.syscalls[syscall].args[arg]`.
///
/// `valueTwo` only means something for `SCMP_CMP_MASKED_EQ` (the expected value, the
/// mask being `value`; absent means 0, as in runc); libseccomp ignores it for the other
/// operators and so does this crate, since generated profiles often carry `valueTwo: 0`.
pub(crate) fn build(
    spec: &LinuxSeccompArg,
    syscall: usize,
    arg: usize,
) -> Result<SeccompCondition, SeccompError> {
    let index = spec.index();
    let out_of_range = || SeccompError::OutOfRange {
        field: format!("linux.seccomp.syscalls[{syscall}].args[{arg}].index"),
        value: u64::try_from(index).unwrap_or(u64::MAX),
        range: "0..=5",
    };
    if index > MAX_ARG_INDEX {
        return Err(out_of_range());
    }
    let index = u8::try_from(index).map_err(|_| out_of_range())?;

    let (op, value, len) = match spec.op() {
        Op::ScmpCmpNe => (SeccompCmpOp::Ne, spec.value(), SeccompCmpArgLen::Qword),
        Op::ScmpCmpLt => (SeccompCmpOp::Lt, spec.value(), SeccompCmpArgLen::Qword),
        Op::ScmpCmpLe => (SeccompCmpOp::Le, spec.value(), SeccompCmpArgLen::Qword),
        Op::ScmpCmpEq => (SeccompCmpOp::Eq, spec.value(), SeccompCmpArgLen::Qword),
        Op::ScmpCmpGe => (SeccompCmpOp::Ge, spec.value(), SeccompCmpArgLen::Qword),
        Op::ScmpCmpGt => (SeccompCmpOp::Gt, spec.value(), SeccompCmpArgLen::Qword),
        Op::ScmpCmpMaskedEq => {
            let mask = spec.value();
            let len = if mask <= u64::from(u32::MAX) {
                SeccompCmpArgLen::Dword
            } else {
                SeccompCmpArgLen::Qword
            };
            // seccompiler, like libseccomp, compares against `expected & mask`.
            let expected = spec.value_two().unwrap_or(0);
            (SeccompCmpOp::MaskedEq(mask), expected, len)
        }
    };
    SeccompCondition::new(index, len, op, value).map_err(|_| out_of_range())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxSeccompArgBuilder;

    fn arg(index: usize, op: Op, value: u64, value_two: Option<u64>) -> LinuxSeccompArg {
        let builder = LinuxSeccompArgBuilder::default()
            .index(index)
            .op(op)
            .value(value);
        match value_two {
            Some(v) => builder.value_two(v).build().unwrap(),
            None => builder.build().unwrap(),
        }
    }

    #[test]
    fn index_past_five_is_rejected_with_its_path() {
        let err = build(&arg(7, Op::ScmpCmpEq, 0, None), 3, 0).unwrap_err();
        assert_eq!(
            err.to_string(),
            "linux.seccomp.syscalls[3].args[0].index 7 is out of range (0..=5)"
        );
        assert!(build(&arg(5, Op::ScmpCmpEq, 0, None), 0, 0).is_ok());
    }

    #[test]
    fn plain_comparisons_use_all_64_bits() {
        let expected =
            SeccompCondition::new(1, SeccompCmpArgLen::Qword, SeccompCmpOp::Le, 9).unwrap();
        assert_eq!(
            build(&arg(1, Op::ScmpCmpLe, 9, Some(0)), 0, 0).unwrap(),
            expected
        );
    }

    #[test]
    fn masked_eq_uses_value_as_mask_and_value_two_as_expected() {
        let narrow = build(&arg(0, Op::ScmpCmpMaskedEq, 0x7E02_0000, Some(0)), 0, 0).unwrap();
        let expected = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::MaskedEq(0x7E02_0000),
            0,
        )
        .unwrap();
        assert_eq!(narrow, expected);

        let wide = build(&arg(2, Op::ScmpCmpMaskedEq, 1 << 40, Some(1 << 40)), 0, 0).unwrap();
        let expected = SeccompCondition::new(
            2,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(1 << 40),
            1 << 40,
        )
        .unwrap();
        assert_eq!(wide, expected);
    }
}
