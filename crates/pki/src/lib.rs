//! The platform's certificate authority.
//!
//! One CA signs every certificate the platform hands out: the gateway's server
//! certificate, and the client certificates of tools (CN=`<tool>`, O=`toolforge`,
//! as maintain-kubeusers issues them) and of users (CN=`<user>`, O=`toolforge-users`).
//!
//! Architecture Invariant: this crate only makes and reads certificates; whether a
//! certificate is still acceptable (regenerated away, tool disabled) is decided by
//! the callers against the store, per request.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use time::OffsetDateTime;

/// Organisation of tool certificates, as the original's maintain-kubeusers writes it.
pub const TOOL_ORGANIZATION: &str = "toolforge";
/// Organisation of user certificates.
pub const USER_ORGANIZATION: &str = "toolforge-users";
/// Common name of the platform CA.
pub const CA_COMMON_NAME: &str = "Toolforge CA";

/// Errors of the certificate authority.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("could not generate or sign a certificate")]
    Generate(#[from] rcgen::Error),
    #[error("could not parse the certificate")]
    Parse,
    #[error("the PEM data holds no {0}")]
    Pem(&'static str),
    #[error("the CA key does not match the CA certificate")]
    KeyMismatch,
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Who a client certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectKind {
    /// A tool account: O=`toolforge`.
    Tool,
    /// A developer account: O=`toolforge-users`.
    User,
}

impl SubjectKind {
    /// The organisation (O) written into certificates for this kind.
    pub fn organization(self) -> &'static str {
        match self {
            SubjectKind::Tool => TOOL_ORGANIZATION,
            SubjectKind::User => USER_ORGANIZATION,
        }
    }
}

/// A certificate and its private key, PEM encoded.
#[derive(Clone)]
pub struct IssuedCert {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key (PKCS#8), PEM.
    pub key_pem: String,
    /// The serial number, lowercase hex without separators.
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

impl std::fmt::Debug for IssuedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is a secret: never print it.
        f.debug_struct("IssuedCert")
            .field("serial", &self.serial)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// The facts about a certificate that the platform acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Subject common name.
    pub common_name: Option<String>,
    /// Subject organisation.
    pub organization: Option<String>,
    /// Issuer common name.
    pub issuer_common_name: Option<String>,
    /// Serial number, lowercase hex without separators.
    pub serial: String,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

/// The platform CA: its certificate and signing key.
pub struct CertificateAuthority {
    cert_pem: String,
    cert_der: Vec<u8>,
    key: KeyPair,
    issuer_params: CertificateParams,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// Creates a new CA valid from `now` for `validity`.
    pub fn create(now: OffsetDateTime, validity: time::Duration) -> Result<Self> {
        let key = KeyPair::generate()?;
        let mut params = ca_params();
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + validity;
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            key,
            issuer_params: ca_params(),
        })
    }

    /// Loads a CA from its PEM certificate and PEM private key.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self> {
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|_| Error::Pem("certificate"))?
            .to_vec();
        let key = KeyPair::from_pem(key_pem)?;
        let (_, parsed) =
            x509_parser::parse_x509_certificate(&cert_der).map_err(|_| Error::Parse)?;
        if parsed.public_key().raw != rcgen::PublicKeyData::subject_public_key_info(&key).as_slice()
        {
            return Err(Error::KeyMismatch);
        }
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            cert_der,
            key,
            issuer_params: ca_params(),
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA private key, PEM. Callers write it 0600 and never log it.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Issues a client certificate for a tool or a user.
    pub fn issue_client(
        &self,
        kind: SubjectKind,
        name: &str,
        now: OffsetDateTime,
        validity: time::Duration,
    ) -> Result<IssuedCert> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        dn.push(DnType::OrganizationName, kind.organization());
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.sign(params, now, validity)
    }

    /// Issues the gateway's server certificate for the given DNS names and IP addresses.
    pub fn issue_server(
        &self,
        subject_alt_names: &[String],
        now: OffsetDateTime,
        validity: time::Duration,
    ) -> Result<IssuedCert> {
        let mut params = CertificateParams::new(subject_alt_names.to_vec())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "toolforge-api-gateway");
        dn.push(DnType::OrganizationName, TOOL_ORGANIZATION);
        params.distinguished_name = dn;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.sign(params, now, validity)
    }

    /// Whether `cert_der` carries a valid signature by this CA.
    ///
    /// This checks the signature only; validity dates and revocation are the caller's.
    pub fn signed(&self, cert_der: &[u8]) -> bool {
        let Ok((_, ca)) = x509_parser::parse_x509_certificate(&self.cert_der) else {
            return false;
        };
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(cert_der) else {
            return false;
        };
        cert.issuer() == ca.subject() && cert.verify_signature(Some(ca.public_key())).is_ok()
    }

    fn sign(
        &self,
        mut params: CertificateParams,
        now: OffsetDateTime,
        validity: time::Duration,
    ) -> Result<IssuedCert> {
        let key = KeyPair::generate()?;
        let serial = random_serial();
        let serial_hex = hex(&serial.to_bytes());
        params.serial_number = Some(serial);
        // A small back-dating absorbs clock skew between the daemon and its clients.
        params.not_before = now - time::Duration::minutes(5);
        params.not_after = now + validity;
        params.use_authority_key_identifier_extension = true;
        let issuer = Issuer::from_params(&self.issuer_params, &self.key);
        let cert = params.signed_by(&key, &issuer)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial: serial_hex,
            not_before: params.not_before,
            not_after: params.not_after,
        })
    }
}

/// Parses a PEM certificate into the facts the platform acts on.
pub fn parse_pem(cert_pem: &str) -> Result<CertInfo> {
    let der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|_| Error::Pem("certificate"))?;
    parse_der(&der)
}

/// Parses a DER certificate into the facts the platform acts on.
pub fn parse_der(cert_der: &[u8]) -> Result<CertInfo> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).map_err(|_| Error::Parse)?;
    let first = |name: &x509_parser::x509::X509Name<'_>, oid| {
        name.iter_by_oid(oid)
            .next()
            .and_then(|attr| attr.as_str().ok())
            .map(str::to_owned)
    };
    let cn = x509_parser::oid_registry::OID_X509_COMMON_NAME;
    let org = x509_parser::oid_registry::OID_X509_ORGANIZATION_NAME;
    Ok(CertInfo {
        common_name: first(cert.subject(), &cn),
        organization: first(cert.subject(), &org),
        issuer_common_name: first(cert.issuer(), &cn),
        serial: hex(cert.raw_serial()),
        not_before: cert.validity().not_before.to_datetime(),
        not_after: cert.validity().not_after.to_datetime(),
    })
}

/// Whether `key_pem` holds a private key rustls can use.
pub fn key_is_valid(key_pem: &str) -> bool {
    PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).is_ok()
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_COMMON_NAME);
    dn.push(DnType::OrganizationName, TOOL_ORGANIZATION);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // A positive integer with no leading zero byte keeps DER and hex forms stable.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        time::macros::datetime!(2026-01-01 00:00 UTC)
    }

    #[test]
    fn a_tool_certificate_names_the_tool_and_our_ca() {
        let ca = CertificateAuthority::create(now(), time::Duration::days(3650)).unwrap();
        let issued = ca
            .issue_client(
                SubjectKind::Tool,
                "mytool",
                now(),
                time::Duration::days(365),
            )
            .unwrap();
        let info = parse_pem(&issued.cert_pem).unwrap();
        assert_eq!(info.common_name.as_deref(), Some("mytool"));
        assert_eq!(info.organization.as_deref(), Some("toolforge"));
        assert_eq!(info.issuer_common_name.as_deref(), Some(CA_COMMON_NAME));
        assert_eq!(info.serial, issued.serial);
        assert_eq!(info.not_after, now() + time::Duration::days(365));
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        assert!(ca.signed(&der));
    }

    #[test]
    fn a_reloaded_ca_signs_certificates_the_first_one_accepts() {
        let ca = CertificateAuthority::create(now(), time::Duration::days(3650)).unwrap();
        let reloaded = CertificateAuthority::load(ca.cert_pem(), &ca.key_pem()).unwrap();
        let issued = reloaded
            .issue_client(SubjectKind::User, "alice", now(), time::Duration::days(1))
            .unwrap();
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        assert!(ca.signed(&der));
        assert_eq!(
            parse_pem(&issued.cert_pem).unwrap().organization.as_deref(),
            Some("toolforge-users")
        );
    }

    #[test]
    fn a_certificate_from_another_ca_with_the_same_name_is_not_ours() {
        let ours = CertificateAuthority::create(now(), time::Duration::days(10)).unwrap();
        let theirs = CertificateAuthority::create(now(), time::Duration::days(10)).unwrap();
        let forged = theirs
            .issue_client(SubjectKind::Tool, "mytool", now(), time::Duration::days(1))
            .unwrap();
        let der = CertificateDer::from_pem_slice(forged.cert_pem.as_bytes()).unwrap();
        assert!(!ours.signed(&der));
    }

    #[test]
    fn loading_a_ca_with_a_foreign_key_is_refused() {
        let one = CertificateAuthority::create(now(), time::Duration::days(10)).unwrap();
        let two = CertificateAuthority::create(now(), time::Duration::days(10)).unwrap();
        assert!(matches!(
            CertificateAuthority::load(one.cert_pem(), &two.key_pem()),
            Err(Error::KeyMismatch)
        ));
    }
}
