#!/usr/bin/env bash
# Builds the release packages and checks them the way a user gets them (issue 21):
#   1. the release binary (CARGO_TARGET_DIR honoured) and the third-party licence list (cargo-about);
#   2. the .deb (cargo-deb): its desktop entry and AppStream metainfo validated, installed with
#      dpkg -i, `m2c --help` and `m2c doctor` run from /usr/bin, the first frame captured under
#      Xvfb when Xvfb is there, then removed with dpkg -r;
#   3. the tarball (binary, desktop entry, icon, metainfo, licences, README) and its SHA-256 file,
#      checked with sha256sum -c and by running the binary it holds.
# Packages land in $CARGO_TARGET_DIR/package/. Any failed check exits non-zero. Needs root for
# apt-get and dpkg (as CI and the project's machines run); installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "package: $*"; }
fail() {
  echo "package: FAILED: $*" >&2
  exit 1
}

# Tools. The cargo subcommands are pinned so CI and developers build the same package.
cargo_deb_version=3.8.0
cargo_about_version=0.9.3
packages=(desktop-file-utils appstream xvfb xauth)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# cargo install builds in its own temporary folder, never in the shared target dir.
install_tool() { # subcommand crate version [cargo install options]
  if ! cargo "$1" --version 2>/dev/null | grep -qF "$3"; then
    say "installing $2 $3 (cargo install --locked; a few minutes)"
    env -u CARGO_TARGET_DIR nice -n 5 cargo install --locked --quiet "$2" --version "$3" "${@:4}"
  fi
}
install_tool deb cargo-deb "$cargo_deb_version"
install_tool about cargo-about "$cargo_about_version" --features cli

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
out="$CARGO_TARGET_DIR/package"
rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d)
installed=""
cleanup() {
  if [ -n "$installed" ]; then
    say "removing the package after a failure"
    dpkg -r "$installed" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[ -n "$version" ] || fail "no version in Cargo.toml"

# 1. Release binary and licence list.
say "building the release binary (cargo build --release; long on a cold target dir)"
start=$(date +%s)
cargo build --release --locked --bin m2c
say "release build took $(($(date +%s) - start)) s"
bin="$CARGO_TARGET_DIR/release/m2c"
licences_name=third-party-licenses.txt
# cargo-deb reads assets under target/release/ from CARGO_TARGET_DIR, so the list goes there.
licences="$CARGO_TARGET_DIR/release/$licences_name"
# Generating takes minutes of CPU (every crate's licence files are matched), so a list made from
# the same Cargo.lock, configuration, template and cargo-about is reused.
stamp=$( (cat Cargo.lock packaging/about.toml packaging/third-party-licenses.hbs; cargo about --version) |
  sha256sum | cut -d' ' -f1)
if [ -s "$licences" ] && [ "$(cat "$licences.stamp" 2>/dev/null)" = "$stamp" ]; then
  say "licence list unchanged since the last run (same Cargo.lock and configuration)"
else
  rm -f "$licences.stamp"
  cargo about generate --locked --offline --fail -c packaging/about.toml \
    -o "$licences" packaging/third-party-licenses.hbs
  echo "$stamp" >"$licences.stamp"
fi
grep -q '^Used by:' "$licences" || fail "the licence list names no crate"
say "licence list: $(grep -c '^  - ' "$licences") crate entries, $(grep -c '^Used by:' "$licences") licence texts"

# 2. The .deb.
cargo deb --no-build --locked --output "$out" >/dev/null
deb=$(ls "$out"/*.deb)
name=$(dpkg-deb -f "$deb" Package)
installed_kib=$(dpkg-deb -f "$deb" Installed-Size)
tree="$work/deb-tree"
dpkg-deb -x "$deb" "$tree"
for f in usr/bin/m2c usr/share/applications/m2c-annotator.desktop \
  usr/share/metainfo/m2c-annotator.metainfo.xml \
  usr/share/icons/hicolor/scalable/apps/m2c-annotator.svg \
  "usr/share/doc/$name/$licences_name" "usr/share/doc/$name/copyright"; do
  [ -s "$tree/$f" ] || fail "$f is missing from $deb"
done

validate_desktop_and_metainfo() { # root
  desktop-file-validate "$1/usr/share/applications/m2c-annotator.desktop"
  # The component id is the desktop file's name and the window's Wayland app_id, m2c-annotator,
  # not a reverse domain name: the project has no domain of its own. That one warning is
  # downgraded; every other warning fails.
  appstreamcli validate --no-net --override=cid-desktopapp-is-not-rdns=info \
    "$1/usr/share/metainfo/m2c-annotator.metainfo.xml"
}
validate_desktop_and_metainfo "$tree" || fail "desktop entry or metainfo invalid in $deb"

if dpkg -s "$name" >/dev/null 2>&1; then
  say "$name is already installed here: it is replaced and removed at the end"
fi
dpkg -i "$deb" >/dev/null || fail "dpkg -i $deb"
installed=$name
[ "$(command -v m2c)" = /usr/bin/m2c ] || fail "m2c on PATH is $(command -v m2c), not /usr/bin/m2c"
home="$work/home"
mkdir -p "$home" "$work/runtime"
chmod 700 "$work/runtime"
run_installed() {
  env -u M2C_WEIGHTS HOME="$home" XDG_CONFIG_HOME="$home/.config" XDG_DATA_HOME="$home/.local/share" \
    XDG_CACHE_HOME="$home/.cache" XDG_RUNTIME_DIR="$work/runtime" "$@"
}
run_installed /usr/bin/m2c --help >"$work/help.txt" || fail "m2c --help"
grep -q doctor "$work/help.txt" || fail "m2c --help does not list the doctor command"
run_installed /usr/bin/m2c doctor >"$work/doctor.txt" || {
  cat "$work/doctor.txt"
  fail "m2c doctor"
}
grep -q '^  check: ok' "$work/doctor.txt" || {
  cat "$work/doctor.txt"
  fail "m2c doctor did not report a passing check"
}
say "m2c doctor: $(grep -m1 '^device' "$work/doctor.txt" || true)"
validate_desktop_and_metainfo / || fail "installed desktop entry or metainfo invalid"
[ -s "/usr/share/doc/$name/$licences_name" ] || fail "the licence list is not installed"

# Start to first frame: the installed binary under Xvfb captures its own settled frame
# (M2C_SCREENSHOT) and closes; the PNG's modification time marks the frame.
first_frame="not measured (no Xvfb)"
if command -v Xvfb >/dev/null; then
  # Xvfb picks a free display and writes its number once it accepts connections.
  Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$work/display" >/dev/null 2>&1 &
  xvfb_pid=$!
  number=""
  for _ in $(seq 200); do
    number=$(tr -dc 0-9 <"$work/display" 2>/dev/null || true)
    [ -n "$number" ] && break
    sleep 0.1
  done
  [ -n "$number" ] || fail "Xvfb did not start"
  shot="$work/first-frame.png"
  t0=$(date +%s.%N)
  if run_installed env -u WAYLAND_DISPLAY DISPLAY=":$number" \
    M2C_DEVICE=cpu M2C_SCREENSHOT="$shot" timeout 120 /usr/bin/m2c >"$work/window.log" 2>&1 &&
    [ -s "$shot" ]; then
    first_frame=$(awk -v a="$t0" -v b="$(stat -c %.9Y "$shot")" 'BEGIN { printf "%.2f s", b - a }')
  else
    kill "$xvfb_pid" 2>/dev/null || true
    cat "$work/window.log"
    fail "the installed m2c did not draw and capture its first frame under Xvfb"
  fi
  kill "$xvfb_pid" 2>/dev/null || true
  wait "$xvfb_pid" 2>/dev/null || true
fi

dpkg -r "$name" >/dev/null || fail "dpkg -r $name"
installed=""
[ ! -e /usr/bin/m2c ] || fail "/usr/bin/m2c is still there after dpkg -r"

# 3. The tarball and its checksum.
stem="m2c-annotator-$version-x86_64-linux"
stage="$work/$stem"
mkdir -p "$stage"
cp "$tree/usr/bin/m2c" "$stage/m2c" # the binary the .deb ships
cp packaging/m2c-annotator.desktop packaging/m2c-annotator.metainfo.xml \
  assets/m2c-annotator.svg README.md "$licences" "$stage/"
tarball="$out/$stem.tar.gz"
tar -C "$work" --owner=0 --group=0 --numeric-owner -czf "$tarball" "$stem"
(cd "$out" && sha256sum "$stem.tar.gz" >"$stem.tar.gz.sha256" && sha256sum -c --quiet "$stem.tar.gz.sha256") ||
  fail "the tarball's checksum does not verify"
mkdir "$work/untar"
tar -C "$work/untar" -xzf "$tarball"
run_installed "$work/untar/$stem/m2c" --help >/dev/null || fail "the tarball's m2c does not run"

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
say "summary"
say "  release binary ($bin): $(mib "$(stat -c %s "$bin")")"
say "  .deb $(basename "$deb"): $(mib "$(stat -c %s "$deb")"), installed size $(mib $((installed_kib * 1024)))"
say "  tarball $(basename "$tarball"): $(mib "$(stat -c %s "$tarball")"), sha256 $(cut -c1-16 "$tarball.sha256")..."
say "  start to first frame (installed binary, Xvfb, CPU device): $first_frame"
say "ok"
