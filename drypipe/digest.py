"""sha1 for DryPipe's digests (fingerprints, Slurm job names, the schema template's name).

CPython's builtin _sha1 where there is one: hashlib's sha1 comes from OpenSSL, whose loading is
~5 ms of the start-up of every `drypipe` command. Same digests either way."""
try:
    from _sha1 import sha1
except ImportError:  # an interpreter built without it
    from hashlib import sha1

__all__ = ["sha1"]
