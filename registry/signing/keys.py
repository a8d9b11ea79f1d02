"""Signing keys: ECDSA P-256 pairs as PEM files, the private half always encrypted.

Two private key formats are read and written:

- ``pkcs8`` (the default): an ``ENCRYPTED PRIVATE KEY`` PEM (PKCS#8, PBES2), which
  openssl reads (``openssl pkey -in cosign.key``);
- ``cosign``: the ``ENCRYPTED SIGSTORE PRIVATE KEY`` (or older ``ENCRYPTED COSIGN
  PRIVATE KEY``) that ``cosign generate-key-pair`` writes and that skopeo's
  ``--sign-by-sigstore-private-key`` takes: scrypt-derived key, NaCl secretbox around
  the PKCS#8 DER, all in a JSON envelope.

The public key is a ``PUBLIC KEY`` PEM (SubjectPublicKeyInfo), as cosign writes it.
Passphrases come from ``PYBUILD_KEY_PASSWORD`` (or cosign's ``COSIGN_PASSWORD``), else a
prompt on the terminal.
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import json
import os
import sys
from typing import Callable, Union

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from .errors import KeyFileError

PublicKey = Union[ec.EllipticCurvePublicKey, rsa.RSAPublicKey, ed25519.Ed25519PublicKey]
FORMATS = ("pkcs8", "cosign")
PASSWORD_VARS = ("PYBUILD_KEY_PASSWORD", "COSIGN_PASSWORD")
_COSIGN_PEM_TYPES = ("ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY")
_SCRYPT = {"N": 32768, "r": 8, "p": 1}


def generate() -> ec.EllipticCurvePrivateKey:
    """A new ECDSA P-256 private key (what cosign generates)."""
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def private_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes, fmt: str = "pkcs8") -> bytes:
    """The private key encrypted with ``passphrase`` in ``fmt`` (``pkcs8`` or ``cosign``)."""
    if not passphrase:
        raise KeyFileError("an empty passphrase would leave the private key unencrypted; set PYBUILD_KEY_PASSWORD")
    if fmt == "pkcs8":
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.BestAvailableEncryption(passphrase))
    if fmt != "cosign":
        raise KeyFileError(f"unknown key format {fmt!r}; use one of {', '.join(FORMATS)}")
    import nacl.secret

    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    salt, nonce = os.urandom(32), os.urandom(nacl.secret.SecretBox.NONCE_SIZE)
    box = nacl.secret.SecretBox(_scrypt(passphrase, salt, _SCRYPT))
    sealed = box.encrypt(der, nonce).ciphertext
    envelope = {"kdf": {"name": "scrypt", "params": _SCRYPT, "salt": _b64(salt)},
                "cipher": {"name": "nacl/secretbox", "nonce": _b64(nonce)}, "ciphertext": _b64(sealed)}
    return _pem(_COSIGN_PEM_TYPES[0], json.dumps(envelope).encode())


def load_private(path: str, passphrase: Callable[[], bytes] | None = None) -> ec.EllipticCurvePrivateKey:
    """Read an ECDSA private key in either format; ``passphrase()`` is asked only when needed."""
    data = _read(path, "private key")
    ask = passphrase or (lambda: read_passphrase(f"Enter password for private key {path}: "))
    block = _pem_block(data)
    if block and block[0] in _COSIGN_PEM_TYPES:
        try:
            key = serialization.load_der_private_key(_open_cosign(block[1], ask(), path), None)
        except (ValueError, UnsupportedAlgorithm) as err:
            raise KeyFileError(f"{path}: the decrypted cosign key is not a PKCS#8 private key ({err})") from None
    else:
        try:
            encrypted = b"ENCRYPTED" in data.split(b"\n", 1)[0]
            key = serialization.load_pem_private_key(data, ask() if encrypted else None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as err:
            if "password" in str(err).lower() or "decrypt" in str(err).lower():
                raise KeyFileError(f"cannot decrypt {path}: wrong passphrase") from None
            raise KeyFileError(f"{path} is not a PEM private key ({err})") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyFileError(f"{path} is not an ECDSA private key; make one with 'pybuild key generate'")
    return key


def load_public(data: bytes, source: str) -> PublicKey:
    """A public key from PEM bytes; ``source`` names it in errors."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as err:
        raise KeyFileError(f"{source} is not a PEM public key ({err}); pass the .pub file") from None
    if not isinstance(key, (ec.EllipticCurvePublicKey, rsa.RSAPublicKey, ed25519.Ed25519PublicKey)):
        raise KeyFileError(f"{source}: unsupported public key type {type(key).__name__}")
    return key


def load_public_file(path: str) -> PublicKey:
    return load_public(_read(path, "public key"), path)


def sign(key: ec.EllipticCurvePrivateKey, payload: bytes) -> bytes:
    """An ASN.1 DER ECDSA signature over SHA-256 of ``payload`` (what openssl dgst verifies)."""
    return key.sign(payload, ec.ECDSA(hashes.SHA256()))


def verify(key: PublicKey, payload: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``key``'s signature of ``payload`` (SHA-256)."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, payload)
    except (InvalidSignature, ValueError):
        return False
    return True


def read_passphrase(prompt: str, confirm: bool = False) -> bytes:
    """The passphrase from the environment, else from the terminal (asked twice when ``confirm``)."""
    for var in PASSWORD_VARS:
        if var in os.environ:
            return os.environ[var].encode()
    if not sys.stdin.isatty():
        raise KeyFileError(f"no passphrase: set {PASSWORD_VARS[0]} or run on a terminal")
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("Enter password for private key again: ") != first:
        raise KeyFileError("the passphrases do not match")
    return first.encode()


def _open_cosign(body: bytes, passphrase: bytes, path: str) -> bytes:
    import nacl.exceptions
    import nacl.secret

    try:
        envelope = json.loads(body)
        kdf, cipher = envelope["kdf"], envelope["cipher"]
        if kdf.get("name") != "scrypt" or cipher.get("name") != "nacl/secretbox":
            raise KeyFileError(f"{path}: unsupported key encryption {kdf.get('name')}/{cipher.get('name')}")
        params = {k: int(kdf["params"][k]) for k in ("N", "r", "p")}
        key = _scrypt(passphrase, base64.b64decode(kdf["salt"]), params)
        return nacl.secret.SecretBox(key).decrypt(base64.b64decode(envelope["ciphertext"]),
                                                   base64.b64decode(cipher["nonce"]))
    except nacl.exceptions.CryptoError:
        raise KeyFileError(f"cannot decrypt {path}: wrong passphrase") from None
    except (ValueError, KeyError, TypeError) as err:
        raise KeyFileError(f"{path} is not a valid cosign private key ({err})") from None


def _scrypt(passphrase: bytes, salt: bytes, params: dict[str, int]) -> bytes:
    n, r, p = params["N"], params["r"], params["p"]
    if n > 1 << 20 or r > 32 or p > 16:
        raise KeyFileError("the key's scrypt parameters are unreasonably large; refusing them")
    return hashlib.scrypt(passphrase, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=256 * r * n + (1 << 20))


def _pem(kind: str, body: bytes) -> bytes:
    text = base64.b64encode(body).decode()
    lines = "\n".join(text[i:i + 64] for i in range(0, len(text), 64))
    return f"-----BEGIN {kind}-----\n{lines}\n-----END {kind}-----\n".encode()


def _pem_block(data: bytes) -> tuple[str, bytes] | None:
    text = data.decode("ascii", errors="replace").strip()
    if not text.startswith("-----BEGIN "):
        return None
    kind = text[len("-----BEGIN "):text.index("-----", 11)]
    end = text.find(f"-----END {kind}-----")
    if end < 0:
        return None
    body = "".join(text[text.index("\n") + 1:end].split())
    try:
        return kind, base64.b64decode(body)
    except ValueError:
        return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        raise KeyFileError(f"{what} {path} does not exist") from None
    except OSError as err:
        raise KeyFileError(f"cannot read {what} {path}: {err.strerror}") from None
