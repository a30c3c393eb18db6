//! Launches the real `m2c` binary in a real window under Xvfb, lets it capture its own frame
//! (`M2C_SCREENSHOT`), and checks the empty state was drawn, not a blank frame.
// Helpers outside #[test] functions expect too: a failure there is a failed test.
#![allow(clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Xvfb {
    child: Child,
    display: String,
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_xvfb() -> Option<Xvfb> {
    let have = Command::new("sh")
        .args(["-c", "command -v Xvfb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("M2C_REQUIRE_XVFB").is_none(),
            "M2C_REQUIRE_XVFB is set but Xvfb is not installed"
        );
        eprintln!("SKIP window test: Xvfb is not installed (apt-get install xvfb)");
        return None;
    }
    // A display number unlikely to clash with a desktop or a parallel test run.
    let number = 90 + std::process::id() % 400;
    let display = format!(":{number}");
    let child = Command::new("Xvfb")
        .args([
            display.as_str(),
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("Xvfb starts");
    // The X server's socket (the standard X11 location, not a path of this machine).
    let socket = Path::new("/tmp")
        .join(".X11-unix")
        .join(format!("X{number}"));
    let start = Instant::now();
    while !socket.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "Xvfb did not come up"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Xvfb { child, display })
}

#[test]
fn window_opens_and_draws_the_empty_state() {
    let Some(xvfb) = start_xvfb() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let shot = dir.path().join("window.png");
    let mut app = Command::new(env!("CARGO_BIN_EXE_m2c"))
        .env("DISPLAY", &xvfb.display)
        .env_remove("WAYLAND_DISPLAY")
        .env("XDG_RUNTIME_DIR", dir.path())
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("M2C_DEVICE", "cpu")
        .env("M2C_SCREENSHOT", &shot)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("m2c starts");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = app.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = app.kill();
            panic!("m2c did not capture and close within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = app.wait_with_output().expect("output");
    assert!(
        status.success(),
        "m2c exited with {status}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let img = image::open(&shot)
        .unwrap_or_else(|e| {
            panic!(
                "no screenshot ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
        .to_rgba8();
    let (w, h) = img.dimensions();
    assert!(w >= 640 && h >= 420, "window too small: {w}x{h}");

    // Not blank: many distinct colours (anti-aliased text), and the background colour does not
    // cover everything.
    let mut counts = std::collections::HashMap::new();
    for p in img.pixels() {
        *counts.entry(p.0).or_insert(0usize) += 1;
    }
    let dominant = counts.values().copied().max().unwrap_or(0);
    let total = (w * h) as usize;
    assert!(
        counts.len() > 30,
        "only {} distinct colours: blank frame?",
        counts.len()
    );
    assert!(
        dominant < total * 98 / 100,
        "one colour covers {dominant} of {total} pixels"
    );

    // The heading sits in the central area: bright text pixels must exist there.
    let bright_in_centre = (h / 4..h * 3 / 4)
        .flat_map(|y| (w / 4..w * 3 / 4).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let p = img.get_pixel(x, y).0;
            p[0] > 180 && p[1] > 180 && p[2] > 180
        })
        .count();
    assert!(
        bright_in_centre > 200,
        "no text drawn in the centre ({bright_in_centre} bright pixels)"
    );
}
