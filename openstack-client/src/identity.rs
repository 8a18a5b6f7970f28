//! Keystone's catalog, written: registering a service and its endpoints, idempotently, as
//! the glance-simplestreams-sync charm has Keystone announce `product-streams` so that Juju
//! finds the image-ids stream a cloud publishes.

use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::auth::Session;
use crate::config::Interface;
use crate::error::{Error, Result};
use crate::http::{json, Request};

/// A service of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceSpec<'a> {
    /// Its type (`product-streams`).
    pub service_type: &'a str,
    /// Its name (`image-stream`, as the charm names it).
    pub name: &'a str,
    /// What it is.
    pub description: &'a str,
}

/// What a registration changed: a second run with the same URL changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registration {
    /// The service was created.
    pub service_created: bool,
    /// Endpoints created.
    pub created: Vec<Interface>,
    /// Endpoints whose URL was changed.
    pub updated: Vec<Interface>,
    /// Duplicate endpoints removed (same service, region and interface).
    pub removed_duplicates: usize,
}

impl Registration {
    /// Whether anything changed.
    pub fn changed(&self) -> bool {
        self.service_created
            || !self.created.is_empty()
            || !self.updated.is_empty()
            || self.removed_duplicates > 0
    }
}

#[derive(Deserialize)]
struct Services {
    services: Vec<Service>,
}

#[derive(Deserialize)]
struct ServiceBody {
    service: Service,
}

#[derive(Deserialize)]
struct Service {
    id: String,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
struct Endpoints {
    endpoints: Vec<EndpointEntry>,
}

#[derive(Deserialize)]
struct EndpointEntry {
    id: String,
    interface: String,
    url: String,
}

impl Session {
    /// Makes the catalog hold `spec` with a public, an internal and an admin endpoint in
    /// `region`, all at `url`: the service is created when missing (one of that type and name,
    /// or else the only one of that type, is reused), an endpoint is created when missing and
    /// its URL updated when it differs, and duplicates are removed. Needs the admin role.
    pub async fn register_endpoints(
        &self,
        spec: &ServiceSpec<'_>,
        region: &str,
        url: &str,
    ) -> Result<Registration> {
        let mut done = Registration::default();
        let base = self.identity_url().to_string();
        let list = format!(
            "{base}/services?type={}",
            crate::encode_segment(spec.service_type)
        );
        let resp = self.send(Request::new(Method::GET, &list)).await?;
        let services: Services = json(&Method::GET, &list, resp).await?;
        let existing = services
            .services
            .iter()
            .find(|s| s.name.as_deref() == Some(spec.name))
            .or(match services.services.as_slice() {
                [only] => Some(only),
                _ => None,
            });
        let service_id = match existing {
            Some(s) => s.id.clone(),
            None => {
                let create = format!("{base}/services");
                let body = json!({"service": {"type": spec.service_type, "name": spec.name,
                    "description": spec.description, "enabled": true}});
                let resp = self
                    .send(Request::new(Method::POST, &create).json(&body))
                    .await?;
                let created: ServiceBody = json(&Method::POST, &create, resp).await?;
                done.service_created = true;
                created.service.id
            }
        };
        let list = format!(
            "{base}/endpoints?service_id={}&region_id={}",
            crate::encode_segment(&service_id),
            crate::encode_segment(region)
        );
        let resp = self.send(Request::new(Method::GET, &list)).await?;
        let endpoints: Endpoints = json(&Method::GET, &list, resp).await?;
        for interface in [Interface::Public, Interface::Internal, Interface::Admin] {
            let mut mine = endpoints
                .endpoints
                .iter()
                .filter(|e| e.interface == interface.as_str());
            match mine.next() {
                None => {
                    let create = format!("{base}/endpoints");
                    let body = json!({"endpoint": {"service_id": service_id,
                        "interface": interface.as_str(), "url": url, "region_id": region,
                        "enabled": true}});
                    self.send(Request::new(Method::POST, &create).json(&body))
                        .await?;
                    done.created.push(interface);
                }
                Some(e) => {
                    if e.url != url {
                        let patch = format!("{base}/endpoints/{}", crate::encode_segment(&e.id));
                        let body = json!({"endpoint": {"url": url}});
                        self.send(
                            Request::new(Method::PATCH, &patch)
                                .json(&body)
                                .idempotent(true),
                        )
                        .await?;
                        done.updated.push(interface);
                    }
                }
            }
            for extra in mine {
                let delete = format!("{base}/endpoints/{}", crate::encode_segment(&extra.id));
                match self.send(Request::new(Method::DELETE, &delete)).await {
                    Ok(_) | Err(Error::NotFound { .. }) => done.removed_duplicates += 1,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(done)
    }
}
