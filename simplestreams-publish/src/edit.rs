//! Taking versions out ([`Repo::remove`], [`Repo::prune`]) and promoting a version from one
//! stream to another ([`Repo::promote`]). Files are deleted by [`Repo::commit`], once no item
//! names them.

use serde_json::Value;
use simplestreams_core::{sorted_versions, Product};

use crate::error::{Error, Result};
use crate::repo::{register_item, ItemView, Repo, VersionRef};

/// What [`Repo::promote`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromoteReport {
    /// The version, in the content id it came from.
    pub from: VersionRef,
    /// The content id it now is in too.
    pub to_content_id: String,
    /// Items copied (their files are shared, not copied).
    pub items: usize,
    /// Whether the version was already there with the same items (nothing changed).
    pub unchanged: bool,
}

impl Repo {
    /// Removes a version of `product` (every version, and the product, when `version` is
    /// `None`) from the content id `content_id` designates (a content id or a stream name,
    /// see [`Repo::resolve_stream`]), or from the one content id holding `product` when not
    /// given. Refused when the product (or version) is not there, or is in several content
    /// ids and none was given.
    pub fn remove(
        &mut self,
        content_id: Option<&str>,
        product: &str,
        version: Option<&str>,
    ) -> Result<Vec<VersionRef>> {
        let cid = self.content_id_holding(content_id, product)?;
        let versions: Vec<String> = {
            let p = &self.streams[&cid].doc.products[product];
            match version {
                Some(v) if p.versions.contains_key(v) => vec![v.to_string()],
                Some(v) => return Err(Error::NotFound(format!("{cid} {product} {v}"))),
                None => p.versions.keys().cloned().collect(),
            }
        };
        let mut removed = Vec::new();
        for v in versions {
            self.remove_version(&cid, product, &v);
            removed.push(VersionRef {
                content_id: cid.clone(),
                product: product.to_string(),
                version: v,
            });
        }
        self.drop_empty_streams();
        Ok(removed)
    }

    /// Keeps the newest `keep` versions of every product (newest by simplestreams version
    /// order: the greatest name, as [`sorted_versions`] sorts) and removes the others.
    /// `keep` must be at least 1 (remove a product with [`Repo::remove`]).
    pub fn prune(&mut self, keep: usize) -> Result<Vec<VersionRef>> {
        if keep == 0 {
            return Err(Error::Invalid(
                "prune keeps at least one version per product (remove a product to drop it)".into(),
            ));
        }
        let mut plan = Vec::new();
        for (cid, file) in &self.streams {
            for (pname, p) in &file.doc.products {
                let newest_first = sorted_versions(p.versions.keys().map(String::as_str));
                for v in newest_first.into_iter().skip(keep) {
                    plan.push(VersionRef {
                        content_id: cid.clone(),
                        product: pname.clone(),
                        version: v.to_string(),
                    });
                }
            }
        }
        for r in &plan {
            self.remove_version(&r.content_id, &r.product, &r.version);
        }
        Ok(plan)
    }

    /// Copies version `version` of `product` from the content id `from` designates to the one
    /// `to` designates (content ids, or stream names: `candidate` → `stable` turns
    /// `X:candidate:download` into `X:stable:download` when the repository has no content id
    /// for `stable` yet). Items keep their paths: files are shared, not copied. The product's
    /// fields come along (on the version, where the target product says otherwise).
    ///
    /// Promoting a version already there with the same items changes nothing; with other
    /// items, it is refused.
    pub fn promote(
        &mut self,
        from: &str,
        to: &str,
        product: &str,
        version: &str,
    ) -> Result<PromoteReport> {
        let from_cid = if from.contains(':') {
            from.to_string()
        } else {
            self.existing_stream(from)?
                .ok_or_else(|| Error::NotFound(format!("stream {from}")))?
        };
        let source = self
            .streams
            .get(&from_cid)
            .ok_or_else(|| Error::NotFound(from_cid.clone()))?;
        let to_cid = if to.contains(':') {
            to.to_string()
        } else if let Some(existing) = self.existing_stream(to)? {
            existing
        } else {
            let mut parts: Vec<&str> = from_cid.split(':').collect();
            if parts.len() >= 2 {
                parts[1] = to;
                parts.join(":")
            } else {
                crate::image::default_content_id(to)
            }
        };
        self.check_new_content_id(&to_cid)?;
        if to_cid == from_cid {
            return Err(Error::Invalid(format!(
                "{from_cid}: promoting a version to its own stream"
            )));
        }
        let src_product = source
            .doc
            .products
            .get(product)
            .ok_or_else(|| Error::NotFound(format!("{from_cid} {product}")))?;
        let src_version = src_product
            .versions
            .get(version)
            .ok_or_else(|| Error::NotFound(format!("{from_cid} {product} {version}")))?
            .clone();
        let src_product_fields = src_product.fields.clone();
        let src_top = source.doc.fields.clone();
        let datatype = source.doc.datatype().map(str::to_string);
        let items = src_version.items.len();
        let report = |unchanged| PromoteReport {
            from: VersionRef {
                content_id: from_cid.clone(),
                product: product.to_string(),
                version: version.to_string(),
            },
            to_content_id: to_cid.clone(),
            items,
            unchanged,
        };

        // Already there?
        if let Some(target) = self.streams.get(&to_cid) {
            if let Some(existing) = target
                .doc
                .products
                .get(product)
                .and_then(|p| p.versions.get(version))
            {
                let src_doc = &self.streams[&from_cid].doc;
                let same = existing.items.len() == src_version.items.len()
                    && src_version.items.keys().all(|i| {
                        let a = ItemView::of(src_doc, product, version, i);
                        let b = ItemView::of(&target.doc, product, version, i);
                        matches!((a, b), (Some(a), Some(b))
                            if a.path == b.path && a.size == b.size
                                && a.sha256 == b.sha256 && a.md5 == b.md5)
                    });
                if same {
                    return Ok(report(true));
                }
                return Err(Error::Conflict {
                    item: format!("{to_cid} {product} {version}"),
                    first: format!("the version already in {to_cid}"),
                    second: format!("the one promoted from {from_cid} (other items)"),
                });
            }
        }

        let file = self.stream_mut(&to_cid, datatype.as_deref());
        file.changed = true;
        let target_top = file.doc.fields.clone();
        let target_product = file
            .doc
            .products
            .entry(product.to_string())
            .or_insert_with(|| {
                let mut p = Product::new();
                p.fields = src_product_fields.clone();
                p
            });
        // Fields the item inherited in the source that the target would not give it.
        let mut new_version = src_version;
        let inherited = src_product_fields
            .iter()
            .chain(src_top.iter().filter(|(k, _)| {
                !matches!(k.as_str(), "content_id" | "format" | "datatype" | "updated")
            }));
        for (k, v) in inherited {
            if !matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
                continue;
            }
            let target_value = target_product.fields.get(k).or_else(|| target_top.get(k));
            if target_value != Some(v) && !new_version.fields.contains_key(k) {
                new_version.fields.insert(k.clone(), v.clone());
            }
        }
        target_product
            .versions
            .insert(version.to_string(), new_version);
        let doc = &self.streams[&to_cid].doc;
        let v = &doc.products[product].versions[version];
        for item in v.items.values() {
            register_item(&mut self.named, doc, product, version, item, 1);
        }
        Ok(report(false))
    }

    /// The content id holding `product`: the one `content_id` designates, else the only one
    /// that has it.
    fn content_id_holding(&self, content_id: Option<&str>, product: &str) -> Result<String> {
        let candidates: Vec<&String> = match content_id {
            Some(c) => {
                let cid = if c.contains(':') || self.streams.contains_key(c) {
                    c.to_string()
                } else {
                    self.existing_stream(c)?
                        .ok_or_else(|| Error::NotFound(format!("stream {c}")))?
                };
                self.streams
                    .get_key_value(&cid)
                    .map(|(k, _)| k)
                    .into_iter()
                    .collect()
            }
            None => self
                .streams
                .iter()
                .filter(|(_, f)| f.doc.products.contains_key(product))
                .map(|(k, _)| k)
                .collect(),
        };
        let holding: Vec<&String> = candidates
            .into_iter()
            .filter(|cid| self.streams[*cid].doc.products.contains_key(product))
            .collect();
        match holding.as_slice() {
            [] => Err(Error::NotFound(match content_id {
                Some(c) => format!("{c} {product}"),
                None => product.to_string(),
            })),
            [one] => Ok((*one).clone()),
            many => Err(Error::Invalid(format!(
                "{product} is in several content ids ({}); say which (--content-id or --stream)",
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Removes one version (and its product, once empty), uncounting the paths it named.
    fn remove_version(&mut self, content_id: &str, product: &str, version: &str) {
        let Some(file) = self.streams.get(content_id) else {
            return;
        };
        let doc = &file.doc;
        if let Some(v) = doc
            .products
            .get(product)
            .and_then(|p| p.versions.get(version))
        {
            for item in v.items.values() {
                register_item(&mut self.named, doc, product, version, item, -1);
            }
        }
        let Some(file) = self.streams.get_mut(content_id) else {
            return;
        };
        if let Some(p) = file.doc.products.get_mut(product) {
            if p.versions.shift_remove(version).is_some() {
                file.changed = true;
            }
            if p.versions.is_empty() {
                file.doc.products.shift_remove(product);
            }
        }
    }
}
