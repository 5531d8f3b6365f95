//! The software adapter of [`etr_domain::ports::ReportCrypto`] (seed 000 §6.6.8): Ed25519
//! detached signatures by `ring`, encryption to a bureau's X25519 public key as a sealed box
//! by `crypto_box` (libsodium-compatible: an ephemeral key per file, XSalsa20-Poly1305, so
//! only the bureau's secret key opens it), SHA-256 by `sha2`. A GOST R 34.10-2012 / CryptoPro
//! adapter would implement the same trait; nothing else changes.

use std::collections::BTreeMap;

use etr_domain::ports::{KeyInfo, ReportCrypto};
use ring::signature::{self, Ed25519KeyPair, KeyPair as _};
use sha2::{Digest as _, Sha256};

use crate::error::Error;

/// The platform's signing key and the bureaus' public keys.
pub struct Software {
    signing: Ed25519KeyPair,
    bureaus: BTreeMap<String, crypto_box::PublicKey>,
}

/// A bureau's key pair, as the bureau (or its simulator) holds it.
pub struct BureauKeys {
    pub secret: crypto_box::SecretKey,
}

impl BureauKeys {
    pub fn generate() -> BureauKeys {
        BureauKeys {
            secret: crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng),
        }
    }

    /// The key pair of a stored secret key (32 bytes).
    pub fn from_secret(secret: [u8; 32]) -> BureauKeys {
        BureauKeys {
            secret: crypto_box::SecretKey::from(secret),
        }
    }

    /// The secret key's bytes, to keep in the bureau's key store.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    pub fn public_key(&self) -> [u8; 32] {
        *self.secret.public_key().as_bytes()
    }

    /// Opens a file sealed to this bureau; `None` when it was not, or was altered.
    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        self.secret.unseal(sealed).ok()
    }
}

impl Software {
    /// A signing key from its PKCS#8 document, and the bureaus' X25519 public keys (32 bytes
    /// each) by bureau name.
    ///
    /// Errors: [`Error::Crypto`] for a PKCS#8 document that is not an Ed25519 key.
    pub fn new(pkcs8: &[u8], bureaus: BTreeMap<String, [u8; 32]>) -> Result<Software, Error> {
        let signing = Ed25519KeyPair::from_pkcs8(pkcs8)
            .map_err(|e| Error::Crypto(format!("the signing key is not Ed25519 PKCS#8: {e}")))?;
        Ok(Software {
            signing,
            bureaus: bureaus
                .into_iter()
                .map(|(name, key)| (name, crypto_box::PublicKey::from(key)))
                .collect(),
        })
    }

    /// A new signing key as a PKCS#8 document (to keep in the key store).
    ///
    /// Errors: [`Error::Crypto`] when the system's random source fails.
    pub fn generate_signing_key() -> Result<Vec<u8>, Error> {
        let rng = ring::rand::SystemRandom::new();
        Ed25519KeyPair::generate_pkcs8(&rng)
            .map(|doc| doc.as_ref().to_vec())
            .map_err(|e| Error::Crypto(format!("no random for a key: {e}")))
    }

    /// The platform's public signing key (32 bytes), what a bureau verifies with.
    pub fn signing_public_key(&self) -> Vec<u8> {
        self.signing.public_key().as_ref().to_vec()
    }
}

/// Whether `signature` is the detached Ed25519 signature of `data` under `public_key`.
pub fn verify(public_key: &[u8], data: &[u8], signature: &[u8]) -> bool {
    signature::UnparsedPublicKey::new(&signature::ED25519, public_key)
        .verify(data, signature)
        .is_ok()
}

impl ReportCrypto for Software {
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, String> {
        Ok(self.signing.sign(data).as_ref().to_vec())
    }

    fn encrypt_for(&self, bureau: &str, data: &[u8]) -> Result<Vec<u8>, String> {
        let key = self
            .bureaus
            .get(bureau)
            .ok_or_else(|| format!("no public key is configured for bureau `{bureau}`"))?;
        key.seal(&mut crypto_box::aead::OsRng, data)
            .map_err(|e| format!("sealing for `{bureau}` failed: {e}"))
    }

    fn digest(&self, data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    fn keys(&self) -> Vec<KeyInfo> {
        let mut keys = vec![KeyInfo {
            id: "platform-signing".into(),
            algorithm: "Ed25519".into(),
            purpose: "signing".into(),
            public_key_hex: hex::encode(self.signing_public_key()),
        }];
        keys.extend(self.bureaus.iter().map(|(name, key)| KeyInfo {
            id: format!("bureau-{name}"),
            algorithm: "X25519".into(),
            purpose: format!("encryption:{name}"),
            public_key_hex: hex::encode(key.as_bytes()),
        }));
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn software(bureau: &BureauKeys) -> Software {
        let pkcs8 = Software::generate_signing_key().unwrap();
        Software::new(
            &pkcs8,
            BTreeMap::from([("nbki".to_owned(), bureau.public_key())]),
        )
        .unwrap()
    }

    #[test]
    fn a_signed_file_verifies_with_the_public_key_and_an_altered_one_does_not() {
        let bureau = BureauKeys::generate();
        let crypto = software(&bureau);
        let file = "1.4;loan-1;10000.00\n".as_bytes();
        let signature = crypto.sign(file).unwrap();
        let public = crypto.signing_public_key();
        assert!(verify(&public, file, &signature));
        assert!(!verify(&public, b"1.4;loan-1;10000.01\n", &signature));
        let other = software(&bureau);
        assert!(!verify(&other.signing_public_key(), file, &signature));
    }

    #[test]
    fn only_the_bureau_opens_what_was_encrypted_for_it() {
        let bureau = BureauKeys::generate();
        let crypto = software(&bureau);
        let sealed = crypto.encrypt_for("nbki", b"report").unwrap();
        assert_ne!(sealed.as_slice(), b"report");
        assert_eq!(bureau.open(&sealed).as_deref(), Some(&b"report"[..]));
        assert_eq!(BureauKeys::generate().open(&sealed), None);
        let mut altered = sealed.clone();
        let last = altered.len() - 1;
        altered[last] ^= 1;
        assert_eq!(bureau.open(&altered), None);
        assert!(crypto.encrypt_for("okb", b"report").is_err());
    }

    #[test]
    fn digests_are_sha256_and_keys_are_listed() {
        let bureau = BureauKeys::generate();
        let crypto = software(&bureau);
        // FIPS 180-2 test vector.
        assert_eq!(
            crypto.digest(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let keys = crypto.keys();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].purpose, "signing");
        assert_eq!(keys[1].purpose, "encryption:nbki");
        assert_eq!(keys[1].public_key_hex, hex::encode(bureau.public_key()));
    }
}
