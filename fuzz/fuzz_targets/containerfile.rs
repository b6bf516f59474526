//! Containerfile bytes -> parser -> variable substitution of every
//! instruction's text, and .dockerignore bytes -> patterns -> matching.
//! None of it may panic or hang, whatever the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(cf) = vessel_build::parse::parse("Containerfile", &text) {
        let env = |n: &str| (n.len() % 2 == 0).then(|| n.to_string());
        for i in &cf.instructions {
            let _ = vessel_build::subst::words(&i.text, cf.escape, &env);
            let _ = vessel_build::subst::word(&i.text, cf.escape, &env);
        }
    }
    if let Ok(ig) = vessel_build::dockerignore::Ignore::parse(&text) {
        for path in ["a", "a/b/c.log", "", "x/y"] {
            let _ = ig.excluded(path);
        }
    }
});
