#!/usr/bin/env python3
"""Verify a certgate identity assertion with PyJWT, as a Python backend would.

    verify.py --jwks http://127.0.0.1:9090/.well-known/jwks.json \
              --audience http://app.internal:8080 [--issuer certgate] \
              [--client-cert client.pem] TOKEN

Prints the verified claims as JSON and exits 0, or prints why the assertion
is refused and exits 1. Needs PyJWT >= 2.4 with cryptography (Debian:
python3-jwt python3-cryptography). In a web app, build the PyJWKClient once
and call verify() per request with the X-Certgate-Assertion header.
"""
import argparse
import base64
import hashlib
import json
import sys

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

# The algorithms certgate signs with; naming them keeps "none" and
# HMAC-with-the-public-key forgeries out.
ALGORITHMS = ["ES256", "EdDSA"]


def verify(jwks_client, token, audience, issuer=None, client_cert_der=None, leeway=10):
    # get_signing_key_from_jwt fetches the JWKS again when the kid is unknown
    # (certgate rotated its key); PyJWKClient caches it in between.
    key = jwks_client.get_signing_key_from_jwt(token)
    options = {"require": ["exp", "iat", "sub", "aud"]}
    claims = jwt.decode(token, key.key, algorithms=ALGORITHMS, audience=audience,
                        issuer=issuer, leeway=leeway, options=options)
    if client_cert_der is not None:
        # RFC 8705: the assertion was made for this client certificate.
        thumb = base64.urlsafe_b64encode(hashlib.sha256(client_cert_der).digest()).rstrip(b"=").decode()
        if claims.get("cnf", {}).get("x5t#S256") != thumb:
            raise jwt.InvalidTokenError("cnf.x5t#S256 does not match the client certificate")
    return claims


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jwks", required=True)
    ap.add_argument("--audience", required=True)
    ap.add_argument("--issuer")
    ap.add_argument("--client-cert", help="PEM client certificate to check cnf against")
    ap.add_argument("token")
    a = ap.parse_args()
    der = None
    if a.client_cert:
        with open(a.client_cert, "rb") as f:
            der = x509.load_pem_x509_certificate(f.read()).public_bytes(Encoding.DER)
    client = jwt.PyJWKClient(a.jwks)
    try:
        claims = verify(client, a.token, a.audience, a.issuer, der)
    except jwt.PyJWTError as e:
        print("refused: %s: %s" % (type(e).__name__, e))
        return 1
    print(json.dumps(claims, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
