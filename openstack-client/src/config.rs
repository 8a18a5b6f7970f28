//! Where to authenticate and as whom: from `OS_*` variables, a `clouds.yaml` cloud, or code.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use super::error::{Error, Result};

/// Which Keystone v3 authentication method to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum AuthType {
    /// User name (or id) and password (`password`, `v3password`).
    #[default]
    Password,
    /// Application credential id (or name and user) and secret
    /// (`v3applicationcredential`, `applicationcredential`).
    ApplicationCredential,
    /// An existing token (`token`, `v3token`). It cannot be renewed.
    Token,
}

impl FromStr for AuthType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "password" | "v3password" => Ok(AuthType::Password),
            "applicationcredential" | "v3applicationcredential" => {
                Ok(AuthType::ApplicationCredential)
            }
            "token" | "v3token" => Ok(AuthType::Token),
            _ => Err(format!(
                "auth type {s:?} is not supported (password, v3applicationcredential, token)"
            )),
        }
    }
}

/// Which of a service's endpoints to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interface {
    /// `public` (also `publicURL`).
    #[default]
    Public,
    /// `internal` (also `internalURL`).
    Internal,
    /// `admin` (also `adminURL`).
    Admin,
}

impl Interface {
    /// The name the catalog uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Interface::Public => "public",
            Interface::Internal => "internal",
            Interface::Admin => "admin",
        }
    }
}

impl fmt::Display for Interface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Interface {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().trim_end_matches("url") {
            "public" => Ok(Interface::Public),
            "internal" => Ok(Interface::Internal),
            "admin" => Ok(Interface::Admin),
            _ => Err(format!("interface {s:?} is not public, internal or admin")),
        }
    }
}

/// Everything needed to reach a cloud: the Keystone URL, the credentials and scope, the region
/// and interface of the endpoints, and TLS settings.
///
/// Build it with [`CloudConfig::from_env`] (the `OS_*` variables, or the `clouds.yaml` cloud
/// named by `OS_CLOUD`), [`CloudConfig::from_clouds_yaml`], or [`CloudConfig::password`] and
/// the `with_*` setters. Secrets never appear in its `Debug` output.
#[derive(Clone, Default)]
pub struct CloudConfig {
    /// Keystone's URL, with or without the trailing `/v3`.
    pub auth_url: String,
    /// Authentication method.
    pub auth_type: AuthType,
    /// User name (password auth, or application credential by name).
    pub username: Option<String>,
    /// User id (instead of the name).
    pub user_id: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// The user's domain by name.
    pub user_domain_name: Option<String>,
    /// The user's domain by id.
    pub user_domain_id: Option<String>,
    /// Project to scope the token to, by name.
    pub project_name: Option<String>,
    /// Project to scope the token to, by id.
    pub project_id: Option<String>,
    /// The project's domain by name.
    pub project_domain_name: Option<String>,
    /// The project's domain by id.
    pub project_domain_id: Option<String>,
    /// Domain scope by name (when no project is given), and default for the user's and the
    /// project's domain.
    pub domain_name: Option<String>,
    /// Domain scope by id; like `domain_name`.
    pub domain_id: Option<String>,
    /// Existing token (token auth).
    pub token: Option<String>,
    /// Application credential id.
    pub application_credential_id: Option<String>,
    /// Application credential name (needs the user too).
    pub application_credential_name: Option<String>,
    /// Application credential secret.
    pub application_credential_secret: Option<String>,
    /// Region of the endpoints; `None` takes an endpoint of any region.
    pub region_name: Option<String>,
    /// Interface of the endpoints.
    pub interface: Interface,
    /// PEM bundle of CA certificates to trust (in addition to the system's).
    pub cacert: Option<PathBuf>,
    /// Accept any TLS certificate (testing only).
    pub insecure: bool,
    /// Where the settings came from, for error messages.
    pub origin: String,
}

impl fmt::Debug for CloudConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |s: &Option<String>| s.as_ref().map(|_| "<hidden>");
        f.debug_struct("CloudConfig")
            .field("auth_url", &self.auth_url)
            .field("auth_type", &self.auth_type)
            .field("username", &self.username)
            .field("user_id", &self.user_id)
            .field("password", &hidden(&self.password))
            .field("user_domain_name", &self.user_domain_name)
            .field("user_domain_id", &self.user_domain_id)
            .field("project_name", &self.project_name)
            .field("project_id", &self.project_id)
            .field("project_domain_name", &self.project_domain_name)
            .field("project_domain_id", &self.project_domain_id)
            .field("domain_name", &self.domain_name)
            .field("domain_id", &self.domain_id)
            .field("token", &hidden(&self.token))
            .field("application_credential_id", &self.application_credential_id)
            .field(
                "application_credential_name",
                &self.application_credential_name,
            )
            .field(
                "application_credential_secret",
                &hidden(&self.application_credential_secret),
            )
            .field("region_name", &self.region_name)
            .field("interface", &self.interface)
            .field("cacert", &self.cacert)
            .field("insecure", &self.insecure)
            .field("origin", &self.origin)
            .finish()
    }
}

impl CloudConfig {
    /// Password authentication as `username` in `project_name`, both in domain `Default`
    /// unless changed with the setters.
    pub fn password(auth_url: &str, username: &str, password: &str, project_name: &str) -> Self {
        CloudConfig {
            auth_url: auth_url.to_owned(),
            username: Some(username.to_owned()),
            password: Some(password.to_owned()),
            project_name: Some(project_name.to_owned()),
            origin: "builder".to_owned(),
            ..CloudConfig::default()
        }
    }

    /// Token authentication with an existing token.
    pub fn token(auth_url: &str, token: &str) -> Self {
        CloudConfig {
            auth_url: auth_url.to_owned(),
            auth_type: AuthType::Token,
            token: Some(token.to_owned()),
            origin: "builder".to_owned(),
            ..CloudConfig::default()
        }
    }

    /// Use endpoints of this region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region_name = Some(region.into());
        self
    }

    /// Use endpoints of this interface.
    pub fn with_interface(mut self, interface: Interface) -> Self {
        self.interface = interface;
        self
    }

    /// Trust the CA certificates of this PEM file too.
    pub fn with_cacert(mut self, path: impl Into<PathBuf>) -> Self {
        self.cacert = Some(path.into());
        self
    }

    /// Accept any TLS certificate (testing only).
    pub fn with_insecure(mut self, insecure: bool) -> Self {
        self.insecure = insecure;
        self
    }

    /// From the process environment: the `clouds.yaml` cloud named by `OS_CLOUD` if set,
    /// else the `OS_*` variables (see [`CloudConfig::from_vars`]).
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Like [`CloudConfig::from_env`], reading variables through `var`.
    ///
    /// With `OS_CLOUD`, the cloud comes from the first `clouds.yaml` found among
    /// `$OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`, `$XDG_CONFIG_HOME/openstack/clouds.yaml` (or
    /// `~/.config/openstack/clouds.yaml`) and `/etc/openstack/clouds.yaml`, and the other `OS_*`
    /// variables are not consulted. Otherwise: `OS_AUTH_URL`, `OS_AUTH_TYPE`, `OS_USERNAME`,
    /// `OS_USER_ID`, `OS_PASSWORD`, `OS_USER_DOMAIN_NAME`/`_ID`, `OS_PROJECT_NAME`/`_ID` (or
    /// `OS_TENANT_NAME`/`_ID`), `OS_PROJECT_DOMAIN_NAME`/`_ID`, `OS_DOMAIN_NAME`/`_ID`, `OS_TOKEN`,
    /// `OS_APPLICATION_CREDENTIAL_ID`/`_NAME`/`_SECRET`, `OS_REGION_NAME`, `OS_INTERFACE` (or
    /// `OS_ENDPOINT_TYPE`), `OS_CACERT`, `OS_INSECURE`. Without `OS_AUTH_TYPE`, the method
    /// follows from what is set: a token, else an application credential secret, else password.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        if let Some(cloud) = var("OS_CLOUD") {
            let path = find_clouds_yaml(&var).ok_or_else(|| {
                Error::config(
                    "environment",
                    format!("OS_CLOUD={cloud} but no clouds.yaml was found (OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml)"),
                )
            })?;
            return Self::from_clouds_yaml(&path, &cloud);
        }
        let origin = "environment";
        let auth_url = var("OS_AUTH_URL").ok_or_else(|| {
            Error::config(
                origin,
                "OS_AUTH_URL is not set (source an openrc file, or set OS_CLOUD)",
            )
        })?;
        let token = var("OS_TOKEN").or_else(|| var("OS_AUTH_TOKEN"));
        let app_secret = var("OS_APPLICATION_CREDENTIAL_SECRET");
        let auth_type = match var("OS_AUTH_TYPE") {
            Some(t) => t
                .parse()
                .map_err(|m| Error::config(origin, format!("OS_AUTH_TYPE: {m}")))?,
            None if token.is_some() => AuthType::Token,
            None if app_secret.is_some() => AuthType::ApplicationCredential,
            None => AuthType::Password,
        };
        let interface = match var("OS_INTERFACE").or_else(|| var("OS_ENDPOINT_TYPE")) {
            Some(i) => i
                .parse()
                .map_err(|m| Error::config(origin, format!("OS_INTERFACE: {m}")))?,
            None => Interface::Public,
        };
        let config = CloudConfig {
            auth_url,
            auth_type,
            username: var("OS_USERNAME"),
            user_id: var("OS_USER_ID"),
            password: var("OS_PASSWORD"),
            user_domain_name: var("OS_USER_DOMAIN_NAME"),
            user_domain_id: var("OS_USER_DOMAIN_ID"),
            project_name: var("OS_PROJECT_NAME").or_else(|| var("OS_TENANT_NAME")),
            project_id: var("OS_PROJECT_ID").or_else(|| var("OS_TENANT_ID")),
            project_domain_name: var("OS_PROJECT_DOMAIN_NAME"),
            project_domain_id: var("OS_PROJECT_DOMAIN_ID"),
            domain_name: var("OS_DOMAIN_NAME"),
            domain_id: var("OS_DOMAIN_ID"),
            token,
            application_credential_id: var("OS_APPLICATION_CREDENTIAL_ID"),
            application_credential_name: var("OS_APPLICATION_CREDENTIAL_NAME"),
            application_credential_secret: app_secret,
            region_name: var("OS_REGION_NAME"),
            interface,
            cacert: var("OS_CACERT").map(PathBuf::from),
            insecure: var("OS_INSECURE").is_some_and(|v| truthy(&v)),
            origin: origin.to_owned(),
        };
        config.validate()?;
        Ok(config)
    }

    /// The cloud `name` of a `clouds.yaml` file (with the secrets of a `secure.yaml` beside it
    /// merged in, as the OpenStack client does).
    pub fn from_clouds_yaml(path: &Path, name: &str) -> Result<Self> {
        let origin = format!("{} cloud {name}", path.display());
        let mut cloud = read_cloud(path, name)?
            .ok_or_else(|| Error::config(&origin, format!("no cloud named {name:?}")))?;
        if let Some(secure) = path.parent().map(|d| d.join("secure.yaml")) {
            if secure.is_file() {
                if let Some(extra) = read_cloud(&secure, name)? {
                    cloud.auth.extend(extra.auth);
                }
            }
        }
        let auth = |key: &str| cloud.auth.get(key).and_then(yaml_string);
        let bad = |field: &str, m: String| Error::config(&origin, format!("{field}: {m}"));
        let auth_type = match &cloud.auth_type {
            Some(t) => t.parse().map_err(|m| bad("auth_type", m))?,
            None if auth("token").is_some() => AuthType::Token,
            None if auth("application_credential_secret").is_some() => {
                AuthType::ApplicationCredential
            }
            None => AuthType::Password,
        };
        let interface = match cloud
            .interface
            .as_deref()
            .or(cloud.endpoint_type.as_deref())
        {
            Some(i) => i.parse().map_err(|m| bad("interface", m))?,
            None => Interface::Public,
        };
        let region_name = cloud.region_name.clone().or_else(|| match &cloud.regions {
            Some(serde_json::Value::Array(list)) => list.first().and_then(|r| match r {
                serde_json::Value::Object(m) => m.get("name").and_then(yaml_string),
                other => yaml_string(other),
            }),
            _ => None,
        });
        let config = CloudConfig {
            auth_url: auth("auth_url")
                .ok_or_else(|| Error::config(&origin, "auth.auth_url is missing"))?,
            auth_type,
            username: auth("username"),
            user_id: auth("user_id"),
            password: auth("password"),
            user_domain_name: auth("user_domain_name"),
            user_domain_id: auth("user_domain_id"),
            project_name: auth("project_name").or_else(|| auth("tenant_name")),
            project_id: auth("project_id").or_else(|| auth("tenant_id")),
            project_domain_name: auth("project_domain_name"),
            project_domain_id: auth("project_domain_id"),
            domain_name: auth("domain_name"),
            domain_id: auth("domain_id"),
            token: auth("token"),
            application_credential_id: auth("application_credential_id"),
            application_credential_name: auth("application_credential_name"),
            application_credential_secret: auth("application_credential_secret"),
            region_name,
            interface,
            cacert: cloud.cacert.map(PathBuf::from),
            // `verify: false` turns certificate checks off; `insecure: true` too.
            insecure: cloud
                .verify
                .as_ref()
                .is_some_and(|v| v.as_bool() == Some(false))
                || cloud
                    .insecure
                    .as_ref()
                    .is_some_and(|v| v.as_bool() == Some(true)),
            origin,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks that the chosen method has what it needs.
    pub fn validate(&self) -> Result<()> {
        let missing = |what: &str| {
            Err(Error::config(
                &self.origin,
                format!("{what} is required for {:?} authentication", self.auth_type),
            ))
        };
        if self.auth_url.is_empty() {
            return Err(Error::config(&self.origin, "the auth URL is empty"));
        }
        match self.auth_type {
            AuthType::Password => {
                if self.username.is_none() && self.user_id.is_none() {
                    return missing("a user name or id");
                }
                if self.password.is_none() {
                    return missing("a password");
                }
            }
            AuthType::ApplicationCredential => {
                if self.application_credential_secret.is_none() {
                    return missing("an application credential secret");
                }
                if self.application_credential_id.is_none()
                    && (self.application_credential_name.is_none()
                        || (self.username.is_none() && self.user_id.is_none()))
                {
                    return missing("an application credential id (or its name and the user)");
                }
            }
            AuthType::Token => {
                if self.token.is_none() {
                    return missing("a token");
                }
            }
        }
        Ok(())
    }
}

fn truthy(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

fn yaml_string(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[derive(Deserialize)]
struct CloudsFile {
    #[serde(default)]
    clouds: BTreeMap<String, CloudEntry>,
}

#[derive(Deserialize)]
struct CloudEntry {
    #[serde(default)]
    auth: BTreeMap<String, serde_json::Value>,
    auth_type: Option<String>,
    region_name: Option<String>,
    regions: Option<serde_json::Value>,
    interface: Option<String>,
    endpoint_type: Option<String>,
    cacert: Option<String>,
    verify: Option<serde_json::Value>,
    insecure: Option<serde_json::Value>,
}

fn read_cloud(path: &Path, name: &str) -> Result<Option<CloudEntry>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut file: CloudsFile = serde_saphyr::from_str(&text)
        .map_err(|e| Error::config(path.display().to_string(), e.to_string()))?;
    Ok(file.clouds.remove(name))
}

fn find_clouds_yaml(var: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(file) = var("OS_CLIENT_CONFIG_FILE") {
        candidates.push(PathBuf::from(file));
    }
    candidates.push(PathBuf::from("clouds.yaml"));
    if let Some(dir) = var("XDG_CONFIG_HOME") {
        candidates.push(Path::new(&dir).join("openstack/clouds.yaml"));
    } else if let Some(home) = var("HOME") {
        candidates.push(Path::new(&home).join(".config/openstack/clouds.yaml"));
    }
    candidates.push(PathBuf::from("/etc/openstack/clouds.yaml"));
    candidates.into_iter().find(|p| p.is_file())
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
