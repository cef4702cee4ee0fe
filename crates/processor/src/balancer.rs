//! Which leases a host takes: a pure decision over the leases it listed and what it has
//! observed of them, so the rule can be tested and simulated without I/O.
//!
//! The rule (the .NET processor's equal-share strategy, plus a per-cycle budget and a
//! graceful hand-off): hosts are the owners of leases that are alive, and this host; each
//! aims for ⌈leases ÷ hosts⌉. A host below its share takes free and expired leases first,
//! up to the per-cycle budget; if there are none, it asks the most loaded host for one lease
//! (a hand-off request), but only from a host that holds more than its share.

use std::collections::{BTreeMap, BTreeSet};

use crate::lease::Lease;

/// What a host knows of one lease when it decides.
#[derive(Clone, Debug)]
pub struct LeaseView<'a> {
    /// The lease as listed.
    pub lease: &'a Lease,
    /// Whether the lease's owner has not been seen to renew it for the expiration interval
    /// (judged on this host's monotonic clock).
    pub expired: bool,
}

/// The decision of one balancing round.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BalancePlan {
    /// Free or expired leases to take now (ids).
    pub take: Vec<String>,
    /// A lease to ask its owner for (id), when nothing is free.
    pub request_handoff: Option<String>,
}

/// Decides what `instance` takes this round. `running` is how many leases it works on now;
/// `max_per_cycle` bounds how many it takes in one round; `tie_breaker` orders the
/// candidates differently on each host so hosts starting together do not all race for the
/// same lease.
pub fn plan(
    views: &[LeaseView<'_>],
    instance: &str,
    running: usize,
    max_per_cycle: usize,
    tie_breaker: u64,
) -> BalancePlan {
    if views.is_empty() {
        return BalancePlan::default();
    }
    let mut per_owner: BTreeMap<&str, usize> = BTreeMap::new();
    for view in views {
        if let Some(owner) = view.lease.owner.as_deref()
            && !view.expired
            && owner != instance
        {
            *per_owner.entry(owner).or_default() += 1;
        }
    }
    let hosts: BTreeSet<&str> = per_owner
        .keys()
        .copied()
        .chain(std::iter::once(instance))
        .collect();
    let target = views.len().div_ceil(hosts.len());
    // Leases this host asked a live owner for, and has not got yet, count as its own: asking
    // again each round would take more than its share and make the hosts hand leases back
    // and forth. (A lease whose owner died meanwhile is expired, hence simply available.)
    let incoming = views
        .iter()
        .filter(|view| {
            view.lease.handoff_to() == Some(instance)
                && !view.lease.is_owned_by(instance)
                && !view.lease.is_free()
                && !view.expired
        })
        .count();
    let running = running + incoming;
    if running >= target {
        return BalancePlan::default();
    }
    let wanted = (target - running).min(max_per_cycle.max(1));
    let mut available: Vec<&Lease> = views
        .iter()
        .filter(|view| !view.lease.is_owned_by(instance) && (view.lease.is_free() || view.expired))
        .map(|view| view.lease)
        .collect();
    available.sort_by_key(|lease| (!lease.is_free(), mix(tie_breaker, &lease.id)));
    if !available.is_empty() {
        return BalancePlan {
            take: available
                .into_iter()
                .take(wanted)
                .map(|lease| lease.id.clone())
                .collect(),
            request_handoff: None,
        };
    }
    // Nothing free: ask the most loaded host, if it has more than it should.
    let needed = target - running;
    let Some((busiest, n_busiest)) = per_owner
        .iter()
        .max_by_key(|(owner, n)| (**n, std::cmp::Reverse(**owner)))
    else {
        return BalancePlan::default();
    };
    let threshold = if needed > 1 { target - 1 } else { target };
    if *n_busiest <= threshold {
        return BalancePlan::default();
    }
    let victim = views
        .iter()
        .filter(|view| view.lease.owner.as_deref() == Some(*busiest))
        .filter(|view| view.lease.handoff_to().is_none())
        .min_by_key(|view| mix(tie_breaker, &view.lease.id))
        .or_else(|| {
            views
                .iter()
                .find(|view| view.lease.owner.as_deref() == Some(*busiest))
        });
    BalancePlan {
        take: Vec::new(),
        request_handoff: victim.map(|view| view.lease.id.clone()),
    }
}

/// A stable hash of a lease id mixed with a host's tie breaker (FNV-1a, then a finalizer).
fn mix(tie_breaker: u64, id: &str) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64 ^ tie_breaker;
    for byte in id.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

/// A stable 64-bit hash of a text (the same in every process and release).
pub(crate) fn stable_hash(text: &str) -> u64 {
    mix(0x7472_6962, text)
}

/// A host's tie breaker, from its instance name.
pub fn tie_breaker_of(instance: &str) -> u64 {
    mix(0, instance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::{EpkSpan, FeedMode};

    fn leases(owners: &[Option<&str>]) -> Vec<Lease> {
        owners
            .iter()
            .enumerate()
            .map(|(i, owner)| {
                let mut lease = Lease::new_epk(
                    "p..",
                    EpkSpan::new(format!("{i:02X}"), format!("{:02X}", i + 1)),
                    FeedMode::LatestVersion,
                );
                lease.owner = owner.map(str::to_owned);
                lease
            })
            .collect()
    }

    fn views<'a>(leases: &'a [Lease], expired: &[usize]) -> Vec<LeaseView<'a>> {
        leases
            .iter()
            .enumerate()
            .map(|(i, lease)| LeaseView {
                lease,
                expired: expired.contains(&i),
            })
            .collect()
    }

    #[test]
    fn a_lone_host_takes_free_leases_up_to_the_budget() {
        let all = leases(&[None, None, None, None]);
        let plan = plan(&views(&all, &[]), "a", 0, 3, 1);
        assert_eq!(plan.take.len(), 3);
        assert_eq!(plan.request_handoff, None);
    }

    #[test]
    fn a_host_at_its_share_takes_nothing() {
        let all = leases(&[Some("a"), Some("a"), Some("b"), Some("b")]);
        assert_eq!(
            plan(&views(&all, &[]), "a", 2, 10, 1),
            BalancePlan::default()
        );
    }

    #[test]
    fn expired_leases_are_taken_and_free_ones_first() {
        let all = leases(&[Some("dead"), None, Some("b"), Some("b")]);
        let plan = plan(&views(&all, &[0]), "a", 0, 10, 7);
        // dead's lease is expired, so hosts are {a, b}: a's share is 2.
        assert_eq!(plan.take, vec![all[1].id.clone(), all[0].id.clone()]);
    }

    #[test]
    fn a_new_host_asks_the_busiest_host_for_one_lease() {
        let all = leases(&[Some("b"), Some("b"), Some("b"), Some("b")]);
        let plan = plan(&views(&all, &[]), "a", 0, 10, 7);
        assert!(plan.take.is_empty());
        assert!(plan.request_handoff.is_some());
    }

    #[test]
    fn a_host_does_not_ask_again_while_a_hand_off_is_pending() {
        let mut all = leases(&[Some("b"), Some("b"), Some("b"), Some("b")]);
        all[0]
            .properties
            .insert(crate::lease::HANDOFF_PROPERTY.into(), "a".into());
        // a's share is 2: one asked for, so it asks for one more, not for every lease.
        let first = plan(&views(&all, &[]), "a", 0, 10, 7);
        let asked = first.request_handoff.expect("asks for a second lease");
        assert_ne!(asked, all[0].id);
        let i = all.iter().position(|l| l.id == asked).unwrap();
        all[i]
            .properties
            .insert(crate::lease::HANDOFF_PROPERTY.into(), "a".into());
        assert_eq!(
            plan(&views(&all, &[]), "a", 0, 10, 7),
            BalancePlan::default()
        );
    }

    #[test]
    fn balanced_hosts_do_not_steal_from_each_other() {
        // 4 leases over 3 hosts: 2/1/1 is balanced, nobody asks.
        let all = leases(&[Some("b"), Some("b"), Some("c"), Some("a")]);
        assert_eq!(
            plan(&views(&all, &[]), "a", 1, 10, 7),
            BalancePlan::default()
        );
        assert_eq!(
            plan(&views(&all, &[]), "c", 1, 10, 7),
            BalancePlan::default()
        );
    }
}
