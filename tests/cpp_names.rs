//! C++ names in native frames, demangled as gdb shows them, from a real crash: a function
//! template in an anonymous namespace whose return type is an `enable_if` of `::value`
//! expressions (the shape of Arrow's cast kernels in pyarrow's stacks, which cpp_demangle alone
//! leaves mangled), compiled at test time without debug information (as wheels ship), so the
//! name comes from the symbol table.

// Tests open, write and print as they need: the doors are crashcatch's own.
#![allow(clippy::disallowed_methods, clippy::disallowed_macros)]

mod common;

use std::process::Command;

use common::*;

const SOURCE: &str = r#"#include <type_traits>
namespace arrow {
struct BinaryType { using offset_type = int; };
struct StringType : BinaryType {};
struct LargeBinaryType { using offset_type = long; };
struct FixedSizeBinaryType {};
template <typename T> struct is_base_binary_type {
  static constexpr bool value = std::is_base_of<BinaryType, T>::value || std::is_same<T, LargeBinaryType>::value;
};
struct KernelContext; struct ExecSpan; struct ExecResult; struct Status { long c; };
namespace compute { namespace internal { namespace {
template <typename O, typename I>
__attribute__((noinline)) std::enable_if_t<is_base_binary_type<I>::value && is_base_binary_type<O>::value &&
                                               !std::is_same<O, FixedSizeBinaryType>::value, Status>
BinaryToBinaryCastExec(KernelContext* ctx, const ExecSpan& batch, ExecResult* out) {
  *(volatile long*)out = sizeof(typename I::offset_type);
  return Status{(long)ctx + (long)&batch};
}
}
Status (*cast)(KernelContext*, const ExecSpan&, ExecResult*) = BinaryToBinaryCastExec<StringType, LargeBinaryType>;
}}}
int main() {
  return (int)arrow::compute::internal::cast(nullptr, *(arrow::ExecSpan*)&main, nullptr).c;
}
"#;

#[test]
fn a_cpp_template_with_an_enable_if_return_type_is_demangled() {
    let dir = out_dir();
    let src = dir.path().join("cast.cc");
    std::fs::write(&src, SOURCE).unwrap();
    let exe = dir.path().join("cast");
    let out = run({
        let mut c = Command::new("g++");
        c.args(["-O1", "-std=c++17", "-o"]).arg(&exe).arg(&src);
        c
    });
    if !out.status.success() {
        skip("C++ names", &format!("g++ could not build the fixture: {}", describe(&out)));
        return;
    }
    let (out, report) = run_caught(NO_ARGS, &[exe.as_os_str()]);
    let r = report.unwrap_or_else(|| panic!("no report\n{}", describe(&out)));
    let f = &r["culprit"]["frame"];
    assert_eq!(
        f["function"],
        "arrow::compute::internal::(anonymous namespace)::BinaryToBinaryCastExec<arrow::StringType, arrow::LargeBinaryType>",
        "{f}"
    );
}
