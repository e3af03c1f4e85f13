//! Keys of an external token issuer, configured as distribution's
//! `auth.token.rootcertbundle`: a PEM file of certificates (or public
//! keys). Each certificate's key is trusted to sign tokens directly; `x5c`
//! chains in token headers are not followed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::AuthError;
use crate::jwt::VerifyKey;

/// `1.2.840.10045.2.1`, an EC public key.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// `1.2.840.10045.3.1.7`, the P-256 curve.
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `1.2.840.113549.1.1.1`, an RSA public key.
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

/// The verification keys in a PEM bundle of `CERTIFICATE` and
/// `PUBLIC KEY` blocks (P-256 or RSA keys; others are refused).
pub fn keys_from_pem(pem: &str) -> Result<Vec<VerifyKey>, AuthError> {
    let mut keys = Vec::new();
    let mut lines = pem.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let body: String = lines.by_ref().take_while(|l| *l != end).collect();
        let der = STANDARD
            .decode(body)
            .map_err(|_| AuthError::Config(format!("a {label} block is not base64")))?;
        let spki = match label {
            "CERTIFICATE" => certificate_spki(&der),
            "PUBLIC KEY" => Some(der.as_slice()),
            _ => continue,
        }
        .ok_or_else(|| AuthError::Config(format!("a {label} block is malformed")))?;
        keys.push(spki_key(spki).map_err(|e| AuthError::Config(format!("a {label} block: {e}")))?);
    }
    if keys.is_empty() {
        return Err(AuthError::Config(
            "no CERTIFICATE or PUBLIC KEY block found".to_owned(),
        ));
    }
    Ok(keys)
}

/// A key from a DER `SubjectPublicKeyInfo`.
fn spki_key(spki: &[u8]) -> Result<VerifyKey, String> {
    let (tag, body, _) = tlv(spki).ok_or("not DER")?;
    if tag != 0x30 {
        return Err("not a SubjectPublicKeyInfo".to_owned());
    }
    let (tag, algorithm, rest) = tlv(body).ok_or("no algorithm")?;
    let (bits_tag, bits, _) = tlv(rest).ok_or("no key")?;
    if tag != 0x30 || bits_tag != 0x03 || bits.first() != Some(&0) {
        return Err("not a SubjectPublicKeyInfo".to_owned());
    }
    let key = bits[1..].to_vec();
    let (oid_tag, oid, params) = tlv(algorithm).ok_or("no algorithm id")?;
    if oid_tag != 0x06 {
        return Err("no algorithm id".to_owned());
    }
    if oid == OID_EC_PUBLIC_KEY {
        match tlv(params) {
            Some((0x06, curve, _)) if curve == OID_P256 => Ok(VerifyKey::Es256 {
                point: key,
                kid: None,
            }),
            _ => Err("an EC key on a curve other than P-256".to_owned()),
        }
    } else if oid == OID_RSA {
        Ok(VerifyKey::Rs256 {
            der: key,
            kid: None,
        })
    } else {
        Err("neither an EC nor an RSA key".to_owned())
    }
}

/// The `SubjectPublicKeyInfo` of a DER certificate.
fn certificate_spki(der: &[u8]) -> Option<&[u8]> {
    let (0x30, cert, _) = tlv(der)? else {
        return None;
    };
    let (0x30, tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut rest = tbs;
    // An explicit [0] version comes first when present.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        rest = tlv(rest)?.2;
    }
    let (tag, _, after) = tlv(rest)?;
    (tag == 0x30).then(|| &rest[..rest.len() - after.len()])
}

/// One DER element: its tag, its contents and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use ring::signature::RsaKeyPair;

    use super::*;
    use crate::jwt::{Audience, Claims, JwtError, SigningKey, Validation};

    /// Runs openssl in `dir`.
    fn openssl(dir: &Path, args: &str) {
        let status = Command::new("openssl")
            .args(args.split(' '))
            .current_dir(dir)
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args}");
    }

    fn read(dir: &Path, name: &str) -> Vec<u8> {
        std::fs::read(dir.join(name)).unwrap()
    }

    fn claims() -> Claims {
        Claims {
            iss: "auth.example".into(),
            sub: "carol".into(),
            aud: Audience::One("registry".into()),
            exp: crate::jwt::now() + 60,
            nbf: None,
            iat: None,
            jti: None,
            access: Vec::new(),
            token_use: None,
        }
    }

    /// An RS256 token, signed the way an external issuer would.
    fn rs256(pkcs8: &[u8], claims: &Claims) -> String {
        let pair = RsaKeyPair::from_pkcs8(pkcs8).unwrap();
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT","kid":"ABCD:EFGH"}"#),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap())
        );
        let mut sig = vec![0; pair.public().modulus_len()];
        pair.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &ring::rand::SystemRandom::new(),
            signed.as_bytes(),
            &mut sig,
        )
        .unwrap();
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    #[test]
    fn tokens_signed_by_keys_of_a_certificate_bundle_verify() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(d, "ecparam -name prime256v1 -genkey -noout -out ec.pem");
        openssl(
            d,
            "pkcs8 -topk8 -nocrypt -in ec.pem -outform DER -out ec.p8",
        );
        openssl(
            d,
            "req -new -x509 -key ec.pem -subj /CN=issuer -days 30 -out ec.crt",
        );
        openssl(d, "genrsa -out rsa.pem 2048");
        openssl(
            d,
            "pkcs8 -topk8 -nocrypt -in rsa.pem -outform DER -out rsa.p8",
        );
        openssl(
            d,
            "req -new -x509 -key rsa.pem -subj /CN=issuer -days 30 -out rsa.crt",
        );
        let bundle = format!(
            "{}{}",
            String::from_utf8(read(d, "ec.crt")).unwrap(),
            String::from_utf8(read(d, "rsa.crt")).unwrap()
        );
        let keys = keys_from_pem(&bundle).unwrap();
        assert!(matches!(keys[0], VerifyKey::Es256 { .. }));
        assert!(matches!(keys[1], VerifyKey::Rs256 { .. }));
        let v = Validation {
            issuer: "auth.example".into(),
            audience: "registry".into(),
            keys,
            leeway: crate::jwt::LEEWAY,
        };
        let now = crate::jwt::now();
        let es = SigningKey::from_pkcs8(&read(d, "ec.p8")).unwrap();
        let claims = v.verify(&es.sign(&claims()).unwrap(), now, false).unwrap();
        assert_eq!(claims.sub, "carol");
        let rs = rs256(&read(d, "rsa.p8"), &claims);
        assert_eq!(v.verify(&rs, now, false).unwrap().sub, "carol");

        // Someone else's key, and a token whose claims were changed.
        let (other, _) = SigningKey::generate().unwrap();
        assert_eq!(
            v.verify(&other.sign(&claims).unwrap(), now, false),
            Err(JwtError::Signature)
        );
        let mut parts: Vec<String> = rs.split('.').map(str::to_owned).collect();
        let mut more = claims.clone();
        more.sub = "root".into();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&more).unwrap());
        assert_eq!(
            v.verify(&parts.join("."), now, false),
            Err(JwtError::Signature)
        );

        // The same keys as bare public keys.
        openssl(d, "ec -in ec.pem -pubout -out ec.pub");
        let keys = keys_from_pem(&String::from_utf8(read(d, "ec.pub")).unwrap()).unwrap();
        assert_eq!(keys, v.keys[..1]);
    }

    #[test]
    fn refuses_keys_it_cannot_use() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        openssl(d, "ecparam -name secp384r1 -genkey -noout -out p384.pem");
        openssl(d, "ec -in p384.pem -pubout -out p384.pub");
        let err = keys_from_pem(&String::from_utf8(read(d, "p384.pub")).unwrap()).unwrap_err();
        assert!(err.to_string().contains("P-256"), "{err}");
        assert!(keys_from_pem("").is_err());
        assert!(
            keys_from_pem("-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----\n").is_err()
        );
        assert!(
            keys_from_pem("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n")
                .is_err()
        );
    }
}
