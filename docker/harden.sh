#!/bin/sh
# Strip a Debian-like base image down to what the predictor runs on; run as the last step of the Dockerfile's
# `system` stage, whose file system the runtime stage copies into an empty image. Removes an attacker's toolbox:
#   - every setuid/setgid bit (su, mount, passwd, ... stay, inert);
#   - the package managers (apt*, dpkg*), keeping /var/lib/dpkg/status so image scanners still list the packages;
#   - perl and the openssl command line (Python's ssl module uses libssl, which stays);
#   - every shell, this one last (the entrypoint is `python -m serving`, which starts no shell).
# tests/image/test_hardening.py checks the result in the exported image.
set -eu

find / -xdev -type f -perm /6000 -exec chmod ug-s {} +

for dir in /usr/bin /usr/sbin /usr/local/bin; do
  for pattern in 'apt' 'apt-*' 'dpkg' 'dpkg-*' 'perl' 'perl5*' 'cpan*' 'openssl' 'c_rehash' 'update-alternatives'; do
    for path in "$dir"/$pattern; do
      if [ -e "$path" ] || [ -L "$path" ]; then rm -f "$path"; fi
    done
  done
done
rm -rf /usr/lib/apt /usr/lib/dpkg /etc/apt /var/lib/apt /var/cache/apt /var/cache/debconf /var/log/* \
  /usr/share/perl /usr/share/perl5 /usr/lib/*/perl /usr/lib/*/perl-base /usr/lib/*/perl5 /usr/share/debconf \
  /harden.sh
# What no predictor process opens (size, not attack surface: the image must be pulled on every cold start):
# glibc's iconv modules (Python has its own codecs; UTF-8 is built into glibc), apt's libraries (apt is gone),
# the wheels and ensurepip that only `python3 -m venv` uses (the venv is made in the build stage), and the
# standard library's lib2to3, pydoc topics and test support.
rm -rf /usr/lib/*/gconv /usr/lib/*/libapt-pkg.so* /usr/lib/*/libapt-private.so* /usr/share/python-wheels \
  /usr/lib/python3*/ensurepip /usr/lib/python3*/lib2to3 /usr/lib/python3*/pydoc_data /usr/lib/python3*/test
# The shells last: `sh` runs this script (an open file survives its removal).
for path in /usr/bin/sh /usr/bin/dash /usr/bin/bash /usr/bin/rbash /bin/sh /bin/dash /bin/bash /bin/rbash; do
  if [ -e "$path" ] || [ -L "$path" ]; then rm -f "$path"; fi
done
