//! The menu profile (spec §1.3, item 4; §3.1): which services client apps offer for
//! payments, top-ups and transfers, where they sit, and the commission profile of each.
//!
//! The rules the processing centre must keep, checked by [`Menu::parse`] (an import that
//! breaks one is refused naming the item):
//!
//! 1. the menu is a tree with at most three roots — Payment, Top-up, Transfer — one per
//!    operation type; a root is a service folder that client apps do not show: it only marks
//!    that everything in it is of its operation type;
//! 2. every item under a root has the root's operation type (no top-up inside «Платёж»);
//! 3. every item has an operation type.
//!
//! And the wallet's own: item ids are unique in the whole menu; a service item names a
//! service of the dictionary and a commission profile of the dictionary and holds no items; a
//! folder names neither; the tree is at most [`MAX_DEPTH`] levels deep.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use super::document::MenuItemDocument;
use super::error::{DictionaryError, ItemRef};
use super::fields::{text, MenuItemId, ProfileId, ServiceId};

/// The deepest a menu may be, roots included.
pub const MAX_DEPTH: usize = 8;

/// The operation type of a menu item (spec §1.3: «Тип операции»).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationType {
    /// «Платёж»
    Payment,
    /// «Пополнение»
    TopUp,
    /// «Перевод»
    Transfer,
}

impl OperationType {
    pub const ALL: [OperationType; 3] = [
        OperationType::Payment,
        OperationType::TopUp,
        OperationType::Transfer,
    ];

    /// `payment`, `top_up` or `transfer`: the form documents and APIs use.
    pub fn code(self) -> &'static str {
        match self {
            OperationType::Payment => "payment",
            OperationType::TopUp => "top_up",
            OperationType::Transfer => "transfer",
        }
    }

    /// Parses [`OperationType::code`].
    pub fn parse(raw: &str) -> Option<OperationType> {
        OperationType::ALL.into_iter().find(|o| o.code() == raw)
    }
}

impl fmt::Display for OperationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OperationType::Payment => "payment",
            OperationType::TopUp => "top-up",
            OperationType::Transfer => "transfer",
        })
    }
}

/// The menu profile, parsed: its roots in document order, one per operation type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Menu {
    /// Folders, each of its own operation type; client apps show their items, not them.
    pub roots: Vec<MenuItem>,
}

/// An item of the menu.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MenuItem {
    pub id: MenuItemId,
    pub name: String,
    /// The item's own operation type, always its root's.
    pub operation: OperationType,
    /// The ids from the root down to this item joined by `/`, e.g.
    /// `payment/payment-mobile/payment-mobile-mts`.
    pub path: String,
    pub entry: MenuEntry,
}

/// What an item is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MenuEntry {
    Folder {
        items: Vec<MenuItem>,
    },
    Service {
        service: ServiceId,
        commission_profile: ProfileId,
    },
}

impl MenuItem {
    /// The items in a folder (none for a service).
    pub fn items(&self) -> &[MenuItem] {
        match &self.entry {
            MenuEntry::Folder { items } => items,
            MenuEntry::Service { .. } => &[],
        }
    }

    /// The service and commission profile of a service item.
    pub fn service(&self) -> Option<(&ServiceId, &ProfileId)> {
        match &self.entry {
            MenuEntry::Service {
                service,
                commission_profile,
            } => Some((service, commission_profile)),
            MenuEntry::Folder { .. } => None,
        }
    }
}

/// One item of [`Menu::walk`]: the item with its parent and its position among its
/// siblings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed<'a> {
    pub item: &'a MenuItem,
    pub parent: Option<&'a MenuItemId>,
    pub position: usize,
}

impl Menu {
    /// Parses the menu profile against the services and commission profiles of the same
    /// document.
    ///
    /// Errors, naming the item by its path of ids: [`DictionaryError::TooManyRoots`],
    /// [`DictionaryError::DuplicateRoot`], [`DictionaryError::RootNotFolder`],
    /// [`DictionaryError::OperationMissing`], [`DictionaryError::OperationUnknown`],
    /// [`DictionaryError::OperationMismatch`], [`DictionaryError::UnknownService`],
    /// [`DictionaryError::UnknownProfile`], [`DictionaryError::ProfileMissing`],
    /// [`DictionaryError::MenuItem`],
    /// [`DictionaryError::Duplicate`], [`DictionaryError::InvalidField`].
    pub(crate) fn parse(
        roots: &[MenuItemDocument],
        services: &BTreeSet<&ServiceId>,
        profiles: &BTreeSet<&ProfileId>,
    ) -> Result<Menu, DictionaryError> {
        let mut parser = Parser {
            services,
            profiles,
            seen: BTreeSet::new(),
        };
        if let Some(fourth) = roots.get(3) {
            return Err(DictionaryError::TooManyRoots {
                item: ItemRef::new("menu", &fourth.id, fourth.id.clone()),
                count: roots.len(),
            });
        }
        let mut by_operation: BTreeMap<OperationType, &str> = BTreeMap::new();
        let mut parsed = Vec::with_capacity(roots.len());
        for (i, doc) in roots.iter().enumerate() {
            let (id, path) = parser.id(doc, None, i)?;
            let item = ItemRef::new("menu", &doc.id, path.clone());
            let operation = operation(doc, &item)?;
            if doc.service.is_some() || doc.commission_profile.is_some() {
                return Err(DictionaryError::RootNotFolder { item });
            }
            if by_operation.insert(operation, &doc.id).is_some() {
                return Err(DictionaryError::DuplicateRoot { item, operation });
            }
            let name = text(&doc.name, 200).map_err(|reason| DictionaryError::InvalidField {
                item: item.clone(),
                field: "name",
                reason,
            })?;
            let items = parser.children(doc, &path, operation, 2)?;
            parsed.push(MenuItem {
                id,
                name,
                operation,
                path,
                entry: MenuEntry::Folder { items },
            });
        }
        Ok(Menu { roots: parsed })
    }

    /// The root of `operation`'s items, if the menu has one.
    pub fn root(&self, operation: OperationType) -> Option<&MenuItem> {
        self.roots.iter().find(|r| r.operation == operation)
    }

    /// Every item, roots included, depth first in document order (a parent before its
    /// items).
    pub fn walk(&self) -> Vec<Placed<'_>> {
        fn visit<'a>(
            items: &'a [MenuItem],
            parent: Option<&'a MenuItemId>,
            out: &mut Vec<Placed<'a>>,
        ) {
            for (position, item) in items.iter().enumerate() {
                out.push(Placed {
                    item,
                    parent,
                    position,
                });
                visit(item.items(), Some(&item.id), out);
            }
        }
        let mut out = Vec::new();
        visit(&self.roots, None, &mut out);
        out
    }

    /// The service item an operation of `operation` for `service` goes through: the item
    /// `item` when given (it must be a service item of that root for that service), else
    /// the first service item of the root for the service, depth first in document order.
    pub fn service_item(
        &self,
        operation: OperationType,
        service: &ServiceId,
        item: Option<&MenuItemId>,
    ) -> Option<&MenuItem> {
        self.walk()
            .into_iter()
            .map(|p| p.item)
            .filter(|i| i.operation == operation)
            .filter(|i| i.service().is_some_and(|(s, _)| s == service))
            .find(|i| item.is_none_or(|wanted| &i.id == wanted))
    }
}

struct Parser<'a> {
    services: &'a BTreeSet<&'a ServiceId>,
    profiles: &'a BTreeSet<&'a ProfileId>,
    seen: BTreeSet<MenuItemId>,
}

impl Parser<'_> {
    /// The item's id and path, the id unique in the menu.
    fn id(
        &mut self,
        doc: &MenuItemDocument,
        parent: Option<&str>,
        index: usize,
    ) -> Result<(MenuItemId, String), DictionaryError> {
        let id = MenuItemId::parse(&doc.id).map_err(|e| DictionaryError::InvalidField {
            item: ItemRef::new(
                "menu",
                &doc.id,
                match parent {
                    Some(p) => format!("{p}/items[{index}]"),
                    None => format!("menu[{index}]"),
                },
            ),
            field: "id",
            reason: e.to_string(),
        })?;
        let path = match parent {
            Some(p) => format!("{p}/{id}"),
            None => id.to_string(),
        };
        if !self.seen.insert(id.clone()) {
            return Err(DictionaryError::Duplicate {
                item: ItemRef::new("menu", &doc.id, path),
            });
        }
        Ok((id, path))
    }

    fn children(
        &mut self,
        folder: &MenuItemDocument,
        path: &str,
        root: OperationType,
        depth: usize,
    ) -> Result<Vec<MenuItem>, DictionaryError> {
        let mut items = Vec::with_capacity(folder.items.len());
        for (i, doc) in folder.items.iter().enumerate() {
            items.push(self.item(doc, path, i, root, depth)?);
        }
        Ok(items)
    }

    fn item(
        &mut self,
        doc: &MenuItemDocument,
        parent: &str,
        index: usize,
        root: OperationType,
        depth: usize,
    ) -> Result<MenuItem, DictionaryError> {
        let (id, path) = self.id(doc, Some(parent), index)?;
        let item = ItemRef::new("menu", &doc.id, path.clone());
        if depth > MAX_DEPTH {
            return Err(DictionaryError::MenuItem {
                item,
                reason: format!("the menu is deeper than {MAX_DEPTH} levels"),
            });
        }
        let name = text(&doc.name, 200).map_err(|reason| DictionaryError::InvalidField {
            item: item.clone(),
            field: "name",
            reason,
        })?;
        let operation = operation(doc, &item)?;
        if operation != root {
            return Err(DictionaryError::OperationMismatch {
                item,
                operation,
                root,
            });
        }
        let entry =
            match (&doc.service, &doc.commission_profile) {
                (None, None) => MenuEntry::Folder {
                    items: self.children(doc, &path, root, depth + 1)?,
                },
                (None, Some(_)) => return Err(DictionaryError::MenuItem {
                    item,
                    reason:
                        "a folder has no commission profile (name a service, or drop the profile)"
                            .into(),
                }),
                (Some(_), None) => return Err(DictionaryError::ProfileMissing { item }),
                (Some(service), Some(profile)) => {
                    if !doc.items.is_empty() {
                        return Err(DictionaryError::MenuItem {
                            item,
                            reason: "a service item holds no items".into(),
                        });
                    }
                    let service = ServiceId::parse(service)
                        .ok()
                        .filter(|s| self.services.contains(s))
                        .ok_or_else(|| DictionaryError::UnknownService {
                            item: item.clone(),
                            service: service.clone(),
                        })?;
                    let commission_profile = ProfileId::parse(profile)
                        .ok()
                        .filter(|p| self.profiles.contains(p))
                        .ok_or_else(|| DictionaryError::UnknownProfile {
                            item: item.clone(),
                            profile: profile.clone(),
                        })?;
                    MenuEntry::Service {
                        service,
                        commission_profile,
                    }
                }
            };
        Ok(MenuItem {
            id,
            name,
            operation,
            path,
            entry,
        })
    }
}

fn operation(doc: &MenuItemDocument, item: &ItemRef) -> Result<OperationType, DictionaryError> {
    let raw = doc
        .operation
        .as_deref()
        .ok_or_else(|| DictionaryError::OperationMissing {
            item: Box::new(item.clone()),
        })?;
    OperationType::parse(raw).ok_or_else(|| DictionaryError::OperationUnknown {
        item: Box::new(item.clone()),
        value: raw.to_owned(),
    })
}
