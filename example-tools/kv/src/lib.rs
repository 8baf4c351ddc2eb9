//! The `kv` tool: a key-value store in instance memory (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "kv-tool" });

use exports::example::kv::kv::Guest;
use std::cell::RefCell;
use std::collections::BTreeMap;

thread_local! {
    static VALUES: RefCell<BTreeMap<String, String>> = const { RefCell::new(BTreeMap::new()) };
    static COUNTERS: RefCell<BTreeMap<String, u64>> = const { RefCell::new(BTreeMap::new()) };
}

struct Kv;

impl Guest for Kv {
    fn set(key: String, value: String) -> u32 {
        VALUES.with_borrow_mut(|values| {
            values.insert(key, value);
            u32::try_from(values.len()).unwrap_or(u32::MAX)
        })
    }

    fn get(key: String) -> Option<String> {
        VALUES.with_borrow(|values| values.get(&key).cloned())
    }

    fn delete(key: String) -> bool {
        VALUES.with_borrow_mut(|values| values.remove(&key).is_some())
    }

    fn keys() -> Vec<String> {
        VALUES.with_borrow(|values| values.keys().cloned().collect())
    }

    fn increment(name: String) -> u64 {
        COUNTERS.with_borrow_mut(|counters| {
            let count = counters.entry(name).or_default();
            *count += 1;
            *count
        })
    }
}

export!(Kv);
