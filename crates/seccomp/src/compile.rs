//! OCI `linux.seccomp` -> a stack of seccompiler filters.
//!
//! # Semantics
//! A rule is one syscall name of one `syscalls[i]` entry; it matches a call when the
//! syscall number is the name's and all of the entry's `args` comparisons hold (they are
//! ANDed, as in libseccomp; entries naming the same syscall are ORed). A call that no
//! rule matches gets `defaultAction`. A call that rules match gets the most restrictive
//! of their actions, in the kernel's order
//! KILL_PROCESS > KILL_THREAD > TRAP > ERRNO > TRACE > LOG > ALLOW.
//!
//! # Why several filters
//! A seccompiler filter has one action for "a rule matched" and one for "none matched".
//! The kernel runs every installed filter and keeps the most restrictive result, which
//! is exactly the rule above, so the profile is split into:
//! - the **default filter** (only if `defaultAction` is not ALLOW): every syscall that has
//!   a rule -> ALLOW *under the OR of all its rules' conditions*, anything else ->
//!   `defaultAction`. It must keep the conditions: with `defaultAction` ERRNO and
//!   "`personality` ALLOW if arg0 == 0", an unconditional ALLOW for `personality` here
//!   would let `personality(1)` through, since no other filter objects to it. With the
//!   conditions, `personality(1)` matches no rule and gets ERRNO.
//! - one **group filter** per distinct non-ALLOW action (ERRNO(1) and ERRNO(38) are
//!   distinct): the group's rules -> its action, anything else -> ALLOW.
//!
//! For a call no rule matches, the default filter says `defaultAction` and every group
//! filter ALLOW. For a call some rules match, the default filter says ALLOW and each
//! group whose rule matches says its action; the kernel keeps the most restrictive.
//!
//! # Keeping the count small
//! A syscall whose rules all carry `defaultAction` is dropped: whatever its conditions
//! say, the answer is `defaultAction`. So the common allow-list (`defaultAction` ERRNO,
//! rules ALLOW) and the common deny-list (`defaultAction` ALLOW, rules ERRNO) are one
//! filter each; every further distinct action adds one.
//!
//! When two rules of the same precedence but different data match (ERRNO(1) and
//! ERRNO(38)), the kernel returns the data of the most recently installed filter; group
//! filters are installed in reverse order of first appearance, so the rule written first
//! in the profile wins. One exception: a filter that would block seccomp(2) itself must
//! be installed last (see `order.rs`).

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxSeccomp, LinuxSyscall};
use seccompiler::{
    BackendError, BpfProgram, SeccompAction, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};

use crate::action::{self, describe, Location};
use crate::arch::{self, Abis};
use crate::condition;
use crate::error::SeccompError;
use crate::install::flag_bits;
use crate::order;
use crate::profile::{CompiledProfile, Filter, Role};

/// The kernel's limit on instructions per filter (BPF_MAXINSNS).
const MAX_INSTRUCTIONS: usize = 4096;

/// One `syscalls[i]` entry after validation.
struct Rule {
    /// Index into `Rules::actions`.
    action: usize,
    /// ANDed; empty means unconditional.
    conditions: Vec<SeccompCondition>,
}

/// All rules of a profile, indexed by syscall number.
#[derive(Default)]
struct Rules {
    /// Distinct actions in order of first appearance.
    actions: Vec<SeccompAction>,
    rules: Vec<Rule>,
    /// Syscall number (native or x32) -> indices into `rules`.
    by_nr: BTreeMap<u32, Vec<usize>>,
    unknown: Vec<String>,
}

pub(crate) fn compile(profile: &LinuxSeccomp) -> Result<CompiledProfile, SeccompError> {
    let target = arch::target()?;
    let default = action::resolve(
        profile.default_action(),
        profile.default_errno_ret(),
        Location::Default,
    )?;
    check_listener(profile)?;
    let flags = flag_bits(profile.flags().as_deref().unwrap_or_default())?;
    let abis = Abis::from_profile(profile.architectures().as_deref().unwrap_or_default());
    let rules = collect(profile.syscalls().as_deref().unwrap_or_default(), &abis)?;

    let mut filters = Vec::with_capacity(4);
    for (role, map) in plan(&rules, &default) {
        let index = filters.len();
        filters.push(build(index, role, map, target)?);
    }
    let mut filters = order::for_install(filters, flags)?;
    if !abis.x32 {
        if let Some(first) = filters.first_mut() {
            arch::add_x32_guard(&mut first.program, 0)?;
            check_size(0, first)?;
        }
    }
    Ok(CompiledProfile {
        filters,
        flags,
        unknown_syscalls: rules.unknown,
        skipped_architectures: abis.skipped,
    })
}

/// `listenerPath` only matters for SCMP_ACT_NOTIFY (rejected where it is used) and the
/// spec says to ignore it otherwise; `listenerMetadata` without it is an error.
fn check_listener(profile: &LinuxSeccomp) -> Result<(), SeccompError> {
    if profile.listener_metadata().is_some() && profile.listener_path().is_none() {
        return Err(SeccompError::Invalid {
            field: "linux.seccomp.listenerMetadata".to_string(),
            reason: "it must not be set without listenerPath",
        });
    }
    Ok(())
}

/// Validates every entry and indexes its rules by syscall number.
fn collect(syscalls: &[LinuxSyscall], abis: &Abis) -> Result<Rules, SeccompError> {
    let mut rules = Rules::default();
    for (i, entry) in syscalls.iter().enumerate() {
        if entry.names().is_empty() {
            return Err(SeccompError::Invalid {
                field: format!("linux.seccomp.syscalls[{i}].names"),
                reason: "it must name at least one syscall",
            });
        }
        let resolved = action::resolve(entry.action(), entry.errno_ret(), Location::Syscall(i))?;
        let conditions = entry
            .args()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(j, arg)| condition::build(arg, i, j))
            .collect::<Result<Vec<_>, _>>()?;

        let action = match rules.actions.iter().position(|a| *a == resolved) {
            Some(known) => known,
            None => {
                rules.actions.push(resolved);
                rules.actions.len() - 1
            }
        };
        let rule = rules.rules.len();
        rules.rules.push(Rule { action, conditions });

        for name in entry.names() {
            match abis.numbers(name) {
                Some((native, x32)) => {
                    for nr in std::iter::once(native).chain(x32) {
                        rules.by_nr.entry(nr).or_default().push(rule);
                    }
                }
                None if !rules.unknown.contains(name) => rules.unknown.push(name.clone()),
                None => {}
            }
        }
    }
    Ok(rules)
}

/// seccompiler's input: syscall number -> ORed rules (empty = unconditional).
type RuleMap = BTreeMap<i64, Vec<SeccompRule>>;

/// Decides which filters to build and what goes into each, in planned install order
/// (`order` may still move one filter last).
fn plan(rules: &Rules, default: &SeccompAction) -> Vec<(Role, RuleMap)> {
    // Syscalls where some rule's action differs from the default; the rest are dropped.
    let relevant: Vec<(u32, &[usize])> = rules
        .by_nr
        .iter()
        .filter(|(_, ids)| {
            ids.iter()
                .any(|&id| rules.actions[rules.rules[id].action] != *default)
        })
        .map(|(&nr, ids)| (nr, ids.as_slice()))
        .collect();

    let mut planned = Vec::new();
    if *default != SeccompAction::Allow {
        let map = relevant
            .iter()
            .map(|&(nr, ids)| (i64::from(nr), chain(rules, ids.iter().copied())))
            .collect();
        planned.push((Role::Default(default.clone()), map));
    }
    // Reverse order of first appearance: the first group is installed last and so wins
    // ties between equal-precedence actions (see the module docs).
    for (id, act) in rules.actions.iter().enumerate().rev() {
        if *act == SeccompAction::Allow {
            continue;
        }
        let map: RuleMap = relevant
            .iter()
            .filter_map(|&(nr, ids)| {
                let mut of_group = ids.iter().copied().filter(|&r| rules.rules[r].action == id);
                let first = of_group.next()?;
                let chain = chain(rules, std::iter::once(first).chain(of_group));
                Some((i64::from(nr), chain))
            })
            .collect();
        if !map.is_empty() {
            planned.push((Role::Group(act.clone()), map));
        }
    }
    planned
}

/// ORs the given rules of one syscall; any unconditional rule makes the whole chain
/// unconditional (seccompiler's empty chain).
fn chain(rules: &Rules, ids: impl Iterator<Item = usize>) -> Vec<SeccompRule> {
    let mut chain = Vec::new();
    for id in ids {
        let conditions = &rules.rules[id].conditions;
        match SeccompRule::new(conditions.clone()) {
            Ok(rule) => chain.push(rule),
            // Only an empty condition list is refused: an unconditional rule.
            Err(_) => return Vec::new(),
        }
    }
    chain
}

fn build(
    index: usize,
    role: Role,
    map: RuleMap,
    target: TargetArch,
) -> Result<Filter, SeccompError> {
    let (on_match, on_mismatch) = match &role {
        Role::Default(default) => (SeccompAction::Allow, default.clone()),
        Role::Group(act) => (act.clone(), SeccompAction::Allow),
    };
    let program = SeccompFilter::new(map, on_mismatch, on_match, target)
        .and_then(BpfProgram::try_from)
        .map_err(|source| SeccompError::Build {
            index,
            role: role_text(&role),
            source,
        })?;
    Ok(Filter { program, role })
}

/// The x32 guard adds instructions after seccompiler's own size check.
fn check_size(index: usize, filter: &Filter) -> Result<(), SeccompError> {
    let len = filter.program.len();
    if len > MAX_INSTRUCTIONS {
        return Err(SeccompError::Build {
            index,
            role: format!("{} + x32 guard", role_text(&filter.role)),
            source: BackendError::FilterTooLarge(len),
        });
    }
    Ok(())
}

/// What a filter does, for error messages.
fn role_text(role: &Role) -> String {
    match role {
        Role::Default(d) => format!(
            "syscalls with a rule -> SCMP_ACT_ALLOW, others -> {}",
            describe(d)
        ),
        Role::Group(a) => format!(
            "matching syscalls -> {}, others -> SCMP_ACT_ALLOW",
            describe(a)
        ),
    }
}
