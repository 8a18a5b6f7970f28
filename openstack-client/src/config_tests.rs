use std::collections::HashMap;

use super::*;

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

/// The variables of the test bed's openrc.
const OPENRC: &[(&str, &str)] = &[
    ("OS_AUTH_URL", "http://127.0.0.1:5000/v3"),
    ("OS_USERNAME", "admin"),
    ("OS_PASSWORD", "adminpass"),
    ("OS_PROJECT_NAME", "admin"),
    ("OS_USER_DOMAIN_NAME", "Default"),
    ("OS_PROJECT_DOMAIN_NAME", "Default"),
    ("OS_REGION_NAME", "RegionOne"),
    ("OS_INTERFACE", "public"),
    ("OS_IDENTITY_API_VERSION", "3"),
];

#[test]
fn openrc_variables_give_password_auth() {
    let c = CloudConfig::from_vars(vars(OPENRC)).expect("valid");
    assert_eq!(c.auth_type, AuthType::Password);
    assert_eq!(c.auth_url, "http://127.0.0.1:5000/v3");
    assert_eq!(
        (c.username.as_deref(), c.password.as_deref()),
        (Some("admin"), Some("adminpass"))
    );
    assert_eq!(c.project_name.as_deref(), Some("admin"));
    assert_eq!(c.user_domain_name.as_deref(), Some("Default"));
    assert_eq!(c.region_name.as_deref(), Some("RegionOne"));
    assert_eq!(c.interface, Interface::Public);
    assert!(!c.insecure);
}

#[test]
fn the_method_follows_from_what_is_set() {
    let c = CloudConfig::from_vars(vars(&[("OS_AUTH_URL", "http://k"), ("OS_TOKEN", "t")]))
        .expect("token");
    assert_eq!(c.auth_type, AuthType::Token);
    let c = CloudConfig::from_vars(vars(&[
        ("OS_AUTH_URL", "http://k"),
        ("OS_APPLICATION_CREDENTIAL_ID", "id"),
        ("OS_APPLICATION_CREDENTIAL_SECRET", "s"),
    ]))
    .expect("app cred");
    assert_eq!(c.auth_type, AuthType::ApplicationCredential);
    let c = CloudConfig::from_vars(vars(&[
        ("OS_AUTH_URL", "http://k"),
        ("OS_AUTH_TYPE", "v3applicationcredential"),
        ("OS_APPLICATION_CREDENTIAL_NAME", "n"),
        ("OS_USERNAME", "u"),
        ("OS_APPLICATION_CREDENTIAL_SECRET", "s"),
    ]))
    .expect("app cred by name");
    assert_eq!(c.application_credential_name.as_deref(), Some("n"));
}

#[test]
fn tls_and_interface_variables() {
    let mut v = OPENRC.to_vec();
    v.retain(|(k, _)| *k != "OS_INTERFACE");
    v.extend([
        ("OS_CACERT", "/etc/ssl/ca.pem"),
        ("OS_INSECURE", "true"),
        ("OS_ENDPOINT_TYPE", "internalURL"),
    ]);
    let c = CloudConfig::from_vars(vars(&v)).expect("valid");
    assert_eq!(c.cacert.as_deref(), Some(Path::new("/etc/ssl/ca.pem")));
    assert!(c.insecure);
    assert_eq!(c.interface, Interface::Internal);
}

#[test]
fn missing_pieces_are_named() {
    let err = CloudConfig::from_vars(vars(&[])).expect_err("no auth url");
    assert!(err.to_string().contains("OS_AUTH_URL is not set"), "{err}");
    let err = CloudConfig::from_vars(vars(&[("OS_AUTH_URL", "http://k"), ("OS_USERNAME", "u")]))
        .expect_err("no password");
    assert!(err.to_string().contains("a password is required"), "{err}");
    let err = CloudConfig::from_vars(vars(&[
        ("OS_AUTH_URL", "http://k"),
        ("OS_AUTH_TYPE", "saml2"),
    ]))
    .expect_err("bad type");
    assert!(err.to_string().contains("OS_AUTH_TYPE"), "{err}");
    let err = CloudConfig::from_vars(vars(&[
        ("OS_AUTH_URL", "http://k"),
        ("OS_APPLICATION_CREDENTIAL_SECRET", "s"),
    ]))
    .expect_err("no id");
    assert!(
        err.to_string().contains("application credential id"),
        "{err}"
    );
}

const CLOUDS: &str = r#"
clouds:
  testbed:
    auth_type: password
    auth:
      auth_url: http://127.0.0.1:5000/v3
      username: admin
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: internal
    identity_api_version: 3
  appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: https://keystone.example:5000
      application_credential_id: abc
      application_credential_secret: s3cr3t
    regions:
      - name: North
      - South
    cacert: /etc/ssl/private-ca.pem
    verify: false
"#;

#[test]
fn clouds_yaml_with_secure_yaml_merged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("clouds.yaml");
    std::fs::write(&path, CLOUDS).expect("write clouds.yaml");
    // Without secure.yaml the password is missing.
    let err = CloudConfig::from_clouds_yaml(&path, "testbed").expect_err("no password");
    assert!(
        err.to_string().contains("clouds.yaml cloud testbed"),
        "{err}"
    );
    std::fs::write(
        dir.path().join("secure.yaml"),
        "clouds:\n  testbed:\n    auth:\n      password: adminpass\n",
    )
    .expect("write secure.yaml");
    let c = CloudConfig::from_clouds_yaml(&path, "testbed").expect("valid");
    assert_eq!(c.password.as_deref(), Some("adminpass"));
    assert_eq!(c.username.as_deref(), Some("admin"));
    assert_eq!(c.region_name.as_deref(), Some("RegionOne"));
    assert_eq!(c.interface, Interface::Internal);

    let c = CloudConfig::from_clouds_yaml(&path, "appcred").expect("valid");
    assert_eq!(c.auth_type, AuthType::ApplicationCredential);
    assert_eq!(c.region_name.as_deref(), Some("North"));
    assert_eq!(
        c.cacert.as_deref(),
        Some(Path::new("/etc/ssl/private-ca.pem"))
    );
    assert!(c.insecure);

    let err = CloudConfig::from_clouds_yaml(&path, "nope").expect_err("unknown cloud");
    assert!(err.to_string().contains("no cloud named \"nope\""), "{err}");
}

#[test]
fn os_cloud_selects_from_os_client_config_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("my-clouds.yaml");
    std::fs::write(&path, CLOUDS).expect("write");
    let file = path.to_string_lossy().into_owned();
    let c = CloudConfig::from_vars(vars(&[
        ("OS_CLOUD", "appcred"),
        ("OS_CLIENT_CONFIG_FILE", &file),
        // Ignored when OS_CLOUD is set.
        ("OS_AUTH_URL", "http://elsewhere"),
    ]))
    .expect("valid");
    assert_eq!(c.auth_url, "https://keystone.example:5000");
    assert_eq!(c.application_credential_id.as_deref(), Some("abc"));

    let err = CloudConfig::from_vars(vars(&[("OS_CLOUD", "x"), ("HOME", "/nonexistent")]))
        .expect_err("no file");
    assert!(
        err.to_string().contains("no clouds.yaml was found"),
        "{err}"
    );
}

#[test]
fn interface_and_auth_type_spellings() {
    for (s, want) in [
        ("public", Interface::Public),
        ("publicURL", Interface::Public),
        ("internalURL", Interface::Internal),
        ("admin", Interface::Admin),
    ] {
        assert_eq!(s.parse::<Interface>().ok(), Some(want), "{s}");
    }
    assert!("private".parse::<Interface>().is_err());
    for (s, want) in [
        ("v3password", AuthType::Password),
        ("v3token", AuthType::Token),
        ("v3applicationcredential", AuthType::ApplicationCredential),
        ("application_credential", AuthType::ApplicationCredential),
    ] {
        assert_eq!(s.parse::<AuthType>().ok(), Some(want), "{s}");
    }
}
