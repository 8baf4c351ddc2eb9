//! Hostile: returns results that grow when the host converts them (see `wit/world.wit`).

are_guest_sdk::generate!({ world: "hostile" });

use exports::hostile::amplify::attack::{Guest, ThirtyTwo, Tiny, Wide};

struct Amplify;

impl Guest for Amplify {
    fn bools(count: u32) -> Vec<bool> {
        vec![true; count as usize]
    }

    fn flag_sets(count: u32) -> Vec<ThirtyTwo> {
        vec![ThirtyTwo::empty(); count as usize]
    }

    fn records(count: u32) -> Vec<Wide> {
        let t = Tiny::Yes;
        let wide = Wide {
            a: t,
            b: t,
            c: t,
            d: t,
            e: t,
            f: t,
            g: t,
            h: t,
            i: t,
            j: t,
            k: t,
            l: t,
            m: t,
            n: t,
            o: t,
            p: t,
        };
        vec![wide; count as usize]
    }

    fn nones(count: u32) -> Vec<Option<u8>> {
        vec![None; count as usize]
    }

    fn escapes(kib: u32) -> String {
        "\0".repeat(kib as usize * 1024)
    }
}

export!(Amplify);
