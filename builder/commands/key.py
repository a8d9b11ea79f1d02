"""``pybuild key generate``: an ECDSA P-256 key pair for ``sign`` and ``verify``."""

from __future__ import annotations

import argparse
import os


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    gen = sub.add_parser("generate", help="write NAME.key (encrypted) and NAME.pub")
    gen.add_argument("--output-key-prefix", default="cosign", metavar="NAME",
                     help="write NAME.key and NAME.pub (default: cosign)")
    gen.add_argument("--format", choices=("pkcs8", "cosign"), default="pkcs8",
                     help="private key format: encrypted PKCS#8 PEM (openssl reads it) or cosign's "
                          "(cosign and skopeo --sign-by-sigstore-private-key read it)")
    gen.add_argument("-f", "--force", action="store_true", help="overwrite existing key files")


def run(args: argparse.Namespace) -> int:
    from registry.errors import PybuildError
    from registry.signing import keys

    private_path, public_path = f"{args.output_key_prefix}.key", f"{args.output_key_prefix}.pub"
    for path in (private_path, public_path):
        if os.path.exists(path) and not args.force:
            raise PybuildError(f"{path} exists; remove it or pass --force")
    passphrase = keys.read_passphrase("Enter password for private key: ", confirm=True)
    key = keys.generate()
    _write(private_path, keys.private_pem(key, passphrase, args.format), 0o600)
    _write(public_path, keys.public_pem(key), 0o644)
    print(f"Private key written to {private_path}")
    print(f"Public key written to {public_path}")
    return 0


def _write(path: str, data: bytes, mode: int) -> None:
    """Write ``data`` with ``mode`` from the start (the private key is never readable by others)."""
    temp = f"{path}.tmp{os.getpid()}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
