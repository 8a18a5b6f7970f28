//! The service catalog of a Keystone v3 token: which URL serves which service where.

use serde::Deserialize;

use super::config::Interface;
use super::error::{Error, Result};

/// The catalog that came with a token: services, each with endpoints per interface and region.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Catalog {
    /// The services.
    pub services: Vec<CatalogService>,
}

/// One service of the catalog.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct CatalogService {
    /// Its type: `identity`, `image`, `object-store`, ...
    #[serde(rename = "type")]
    pub service_type: String,
    /// Its name (`glance`, `swift`, ...), when it has one.
    #[serde(default)]
    pub name: Option<String>,
    /// Its endpoints.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

/// One endpoint of a service.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Endpoint {
    /// `public`, `internal` or `admin`.
    pub interface: String,
    /// The region's id (Keystone v3); older deployments only fill `region`.
    #[serde(default)]
    pub region_id: Option<String>,
    /// The region's name as older Keystones give it.
    #[serde(default)]
    pub region: Option<String>,
    /// The URL, with the project id already filled in (Swift's `AUTH_<project>`).
    pub url: String,
}

impl Endpoint {
    /// The endpoint's region, if it has one.
    pub fn region(&self) -> Option<&str> {
        self.region_id.as_deref().or(self.region.as_deref())
    }
}

impl Catalog {
    /// The URL of the `service_type` endpoint for `interface`, in `region` if one is given
    /// (else the first endpoint of any region). The URL has no trailing slash.
    pub fn endpoint(
        &self,
        service_type: &str,
        interface: Interface,
        region: Option<&str>,
    ) -> Result<String> {
        self.services
            .iter()
            .filter(|s| s.service_type == service_type)
            .flat_map(|s| &s.endpoints)
            .find(|e| {
                e.interface == interface.as_str() && region.is_none_or(|r| e.region() == Some(r))
            })
            .map(|e| e.url.trim_end_matches('/').to_owned())
            .ok_or_else(|| Error::NoEndpoint {
                service_type: service_type.to_owned(),
                interface: interface.as_str().to_owned(),
                region: region.map(str::to_owned),
            })
    }

    /// Every region that has a `service_type` endpoint for `interface`, in catalog order,
    /// without repeats.
    pub fn regions(&self, service_type: &str, interface: Interface) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let endpoints = self
            .services
            .iter()
            .filter(|s| s.service_type == service_type)
            .flat_map(|s| &s.endpoints)
            .filter(|e| e.interface == interface.as_str());
        for e in endpoints {
            if let Some(r) = e.region() {
                if !out.iter().any(|o| o == r) {
                    out.push(r.to_owned());
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        serde_json::from_str(
            r#"[
              {"type": "identity", "name": "keystone", "endpoints": [
                {"interface": "public", "region_id": "R1", "region": "R1", "url": "http://k/v3"}]},
              {"type": "image", "name": "glance", "endpoints": [
                {"interface": "public", "region_id": "R1", "url": "http://g1:9292/"},
                {"interface": "internal", "region_id": "R1", "url": "http://g1-int:9292"},
                {"interface": "public", "region_id": "R2", "url": "http://g2:9292"},
                {"interface": "public", "region": "R3", "url": "http://g3:9292"},
                {"interface": "public", "region_id": "R2", "url": "http://g2-dup:9292"}]}
            ]"#,
        )
        .expect("test catalog parses")
    }

    #[test]
    fn endpoint_by_type_interface_and_region() {
        let c = catalog();
        assert_eq!(
            c.endpoint("image", Interface::Public, Some("R2")).ok(),
            Some("http://g2:9292".into())
        );
        assert_eq!(
            c.endpoint("image", Interface::Internal, Some("R1")).ok(),
            Some("http://g1-int:9292".into())
        );
        // Trailing slash removed; no region = the first one.
        assert_eq!(
            c.endpoint("image", Interface::Public, None).ok(),
            Some("http://g1:9292".into())
        );
        // The pre-v3 "region" field counts too.
        assert_eq!(
            c.endpoint("image", Interface::Public, Some("R3")).ok(),
            Some("http://g3:9292".into())
        );
    }

    #[test]
    fn missing_endpoint_names_what_was_asked() {
        let err = catalog()
            .endpoint("image", Interface::Admin, Some("R1"))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the service catalog has no admin endpoint of type image in region R1"
        );
        let err = catalog()
            .endpoint("object-store", Interface::Public, None)
            .unwrap_err();
        assert!(
            matches!(err, Error::NoEndpoint { ref service_type, .. } if service_type == "object-store")
        );
    }

    #[test]
    fn regions_lists_each_once_in_order() {
        assert_eq!(
            catalog().regions("image", Interface::Public),
            ["R1", "R2", "R3"]
        );
        assert_eq!(catalog().regions("image", Interface::Internal), ["R1"]);
        assert!(catalog().regions("volume", Interface::Public).is_empty());
    }
}
