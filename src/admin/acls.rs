//! Access control lists: create, describe and delete (KIP-140), with typed bindings and
//! filters and no kafka-protocol type in the public API. ACL requests go to the controller
//! (or any broker, which forwards in KRaft).
//!
//! Each enum maps to the wire codes Kafka's `AclOperation`, `ResourceType`, `PatternType` and
//! `AclPermissionType` define; `Display` gives the names Kafka's own tools print, so errors
//! can name the binding that failed.

use std::fmt;

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{ApiKey, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;

use super::{first_error, resource_error, Admin, ResourceResult, Target};
use crate::error::{Error, Result};
use crate::protocol::str_bytes;

/// What kind of resource an ACL guards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AclResourceType {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
    /// The cluster itself (create topics, ACLs, cluster-wide configs).
    Cluster,
    /// A transactional id.
    TransactionalId,
}

impl AclResourceType {
    fn code(self) -> i8 {
        match self {
            AclResourceType::Topic => 2,
            AclResourceType::Group => 3,
            AclResourceType::Cluster => 4,
            AclResourceType::TransactionalId => 5,
        }
    }

    fn from_code(code: i8) -> Option<AclResourceType> {
        [
            AclResourceType::Topic,
            AclResourceType::Group,
            AclResourceType::Cluster,
            AclResourceType::TransactionalId,
        ]
        .into_iter()
        .find(|t| t.code() == code)
    }

    fn name(self) -> &'static str {
        match self {
            AclResourceType::Topic => "TOPIC",
            AclResourceType::Group => "GROUP",
            AclResourceType::Cluster => "CLUSTER",
            AclResourceType::TransactionalId => "TRANSACTIONAL_ID",
        }
    }
}

/// An operation an ACL allows or denies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AclOperation {
    /// Every operation.
    All,
    /// Read (consume; join a group; commit offsets).
    Read,
    /// Write (produce; use a transactional id).
    Write,
    /// Create (topics).
    Create,
    /// Delete (topics, records, groups).
    Delete,
    /// Alter (ACLs on the cluster; partitions).
    Alter,
    /// Describe.
    Describe,
    /// Inter-broker cluster actions.
    ClusterAction,
    /// Describe configurations.
    DescribeConfigs,
    /// Alter configurations.
    AlterConfigs,
    /// Idempotent produce (no longer needed since Kafka 3.0, which takes WRITE on a topic).
    IdempotentWrite,
}

impl AclOperation {
    fn code(self) -> i8 {
        match self {
            AclOperation::All => 2,
            AclOperation::Read => 3,
            AclOperation::Write => 4,
            AclOperation::Create => 5,
            AclOperation::Delete => 6,
            AclOperation::Alter => 7,
            AclOperation::Describe => 8,
            AclOperation::ClusterAction => 9,
            AclOperation::DescribeConfigs => 10,
            AclOperation::AlterConfigs => 11,
            AclOperation::IdempotentWrite => 12,
        }
    }

    /// The operation with Kafka's wire code `code`, if this client knows it.
    pub(crate) fn from_code(code: i8) -> Option<AclOperation> {
        use AclOperation as O;
        [
            O::All,
            O::Read,
            O::Write,
            O::Create,
            O::Delete,
            O::Alter,
            O::Describe,
            O::ClusterAction,
            O::DescribeConfigs,
            O::AlterConfigs,
            O::IdempotentWrite,
        ]
        .into_iter()
        .find(|o| o.code() == code)
    }

    fn name(self) -> &'static str {
        match self {
            AclOperation::All => "ALL",
            AclOperation::Read => "READ",
            AclOperation::Write => "WRITE",
            AclOperation::Create => "CREATE",
            AclOperation::Delete => "DELETE",
            AclOperation::Alter => "ALTER",
            AclOperation::Describe => "DESCRIBE",
            AclOperation::ClusterAction => "CLUSTER_ACTION",
            AclOperation::DescribeConfigs => "DESCRIBE_CONFIGS",
            AclOperation::AlterConfigs => "ALTER_CONFIGS",
            AclOperation::IdempotentWrite => "IDEMPOTENT_WRITE",
        }
    }
}

/// Whether an ACL allows or denies. A DENY wins over any ALLOW.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AclPermission {
    /// Allow the operation.
    Allow,
    /// Deny the operation.
    Deny,
}

impl AclPermission {
    fn code(self) -> i8 {
        match self {
            AclPermission::Deny => 2,
            AclPermission::Allow => 3,
        }
    }

    fn from_code(code: i8) -> Option<AclPermission> {
        match code {
            2 => Some(AclPermission::Deny),
            3 => Some(AclPermission::Allow),
            _ => None,
        }
    }
}

/// How the resource name matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AclPatternType {
    /// The exact name (`*` matches every resource of the type).
    Literal,
    /// Every resource whose name starts with it.
    Prefixed,
}

impl AclPatternType {
    fn code(self) -> i8 {
        match self {
            AclPatternType::Literal => 3,
            AclPatternType::Prefixed => 4,
        }
    }

    fn from_code(code: i8) -> Option<AclPatternType> {
        match code {
            3 => Some(AclPatternType::Literal),
            4 => Some(AclPatternType::Prefixed),
            _ => None,
        }
    }
}

/// One ACL: `principal` may (or may not) do `operation` on a resource, from `host`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct AclBinding {
    /// The resource type.
    pub resource_type: AclResourceType,
    /// The resource name (`kafka-cluster` for the cluster).
    pub resource_name: String,
    /// How `resource_name` matches.
    pub pattern_type: AclPatternType,
    /// The principal, e.g. `User:alice`.
    pub principal: String,
    /// The client host, `*` for any.
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// Allow or deny.
    pub permission: AclPermission,
}

impl AclBinding {
    /// An ACL on the resource named exactly `resource_name`, from any host.
    pub fn new(
        resource_type: AclResourceType,
        resource_name: impl Into<String>,
        principal: impl Into<String>,
        operation: AclOperation,
        permission: AclPermission,
    ) -> AclBinding {
        AclBinding {
            resource_type,
            resource_name: resource_name.into(),
            pattern_type: AclPatternType::Literal,
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission,
        }
    }

    /// Matches every resource whose name starts with the resource name.
    pub fn prefixed(mut self) -> AclBinding {
        self.pattern_type = AclPatternType::Prefixed;
        self
    }

    /// Only for clients connecting from `host`.
    pub fn host(mut self, host: impl Into<String>) -> AclBinding {
        self.host = host.into();
        self
    }

    pub(crate) fn to_creation(&self) -> AclCreation {
        AclCreation::default()
            .with_resource_type(self.resource_type.code())
            .with_resource_name(StrBytes::from_string(self.resource_name.clone()))
            .with_resource_pattern_type(self.pattern_type.code())
            .with_principal(StrBytes::from_string(self.principal.clone()))
            .with_host(StrBytes::from_string(self.host.clone()))
            .with_operation(self.operation.code())
            .with_permission_type(self.permission.code())
    }

    /// A binding from its wire codes; `None` for codes this client does not know.
    #[allow(clippy::too_many_arguments)]
    fn from_wire(
        resource_type: i8,
        resource_name: &str,
        pattern_type: i8,
        principal: &str,
        host: &str,
        operation: i8,
        permission: i8,
    ) -> Option<AclBinding> {
        Some(AclBinding {
            resource_type: AclResourceType::from_code(resource_type)?,
            resource_name: resource_name.to_string(),
            pattern_type: AclPatternType::from_code(pattern_type)?,
            principal: principal.to_string(),
            host: host.to_string(),
            operation: AclOperation::from_code(operation)?,
            permission: AclPermission::from_code(permission)?,
        })
    }
}

/// Which ACLs [`Admin::describe_acls`] and [`Admin::delete_acls`] match: every field left
/// `None` matches anything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct AclBindingFilter {
    /// Only this resource type.
    pub resource_type: Option<AclResourceType>,
    /// Only this resource name (exactly, as the binding stores it).
    pub resource_name: Option<String>,
    /// Only this pattern type.
    pub pattern_type: Option<AclPatternType>,
    /// Only this principal.
    pub principal: Option<String>,
    /// Only this host.
    pub host: Option<String>,
    /// Only this operation.
    pub operation: Option<AclOperation>,
    /// Only this permission.
    pub permission: Option<AclPermission>,
}

impl AclBindingFilter {
    /// Matches every ACL.
    pub fn any() -> AclBindingFilter {
        AclBindingFilter::default()
    }

    /// Matches exactly `binding`.
    pub fn exact(binding: &AclBinding) -> AclBindingFilter {
        AclBindingFilter {
            resource_type: Some(binding.resource_type),
            resource_name: Some(binding.resource_name.clone()),
            pattern_type: Some(binding.pattern_type),
            principal: Some(binding.principal.clone()),
            host: Some(binding.host.clone()),
            operation: Some(binding.operation),
            permission: Some(binding.permission),
        }
    }

    /// Only ACLs on resources of this type named `name`.
    pub fn resource(mut self, resource_type: AclResourceType, name: impl Into<String>) -> Self {
        self.resource_type = Some(resource_type);
        self.resource_name = Some(name.into());
        self
    }

    /// Only ACLs of this principal.
    pub fn principal(mut self, principal: impl Into<String>) -> Self {
        self.principal = Some(principal.into());
        self
    }

    /// The wire codes: (resource type, pattern type, operation, permission); 1 is ANY.
    fn codes(&self) -> (i8, i8, i8, i8) {
        (
            self.resource_type.map_or(1, |t| t.code()),
            self.pattern_type.map_or(1, |p| p.code()),
            self.operation.map_or(1, |o| o.code()),
            self.permission.map_or(1, |p| p.code()),
        )
    }
}

impl fmt::Display for AclBindingFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let any = |v: Option<String>| v.unwrap_or_else(|| "*any*".into());
        write!(
            f,
            "filter {} {} {} on {}:{} from {}",
            any(self.permission.map(|p| format!("{p:?}"))),
            any(self.principal.clone()),
            any(self.operation.map(|o| o.name().to_string())),
            any(self.resource_type.map(|t| t.name().to_string())),
            any(self.resource_name.clone()),
            any(self.host.clone()),
        )
    }
}

impl Admin {
    /// Creates ACLs (CreateAcls; needs ALTER on the cluster, which a super user has). The
    /// first binding the broker refuses decides the error, which names it; without the
    /// right the error is CLUSTER_AUTHORIZATION_FAILED. Brokers apply new ACLs
    /// asynchronously (through the metadata log in KRaft), so they may take a moment to
    /// bite. [`create_acls_each`](Self::create_acls_each) reports each binding.
    pub async fn create_acls(&self, acls: &[AclBinding]) -> Result<()> {
        first_error(self.create_acls_each(acls).await?)
    }

    /// Creates ACLs and reports each binding's own outcome, in the order given.
    pub async fn create_acls_each(
        &self,
        acls: &[AclBinding],
    ) -> Result<Vec<ResourceResult<AclBinding, ()>>> {
        Ok(self
            .per_resource(ApiKey::CreateAcls, acls.to_vec(), |pending| async move {
                let (_, resp) = self
                    .call(Target::Controller, ApiKey::CreateAcls, |_| {
                        Ok(CreateAclsRequest::default()
                            .with_creations(pending.iter().map(|a| a.to_creation()).collect()))
                    })
                    .await?;
                // Results come in the order of the creations.
                if resp.results.len() != pending.len() {
                    return Err(Error::protocol(format!(
                        "CreateAcls answered {} results for {} creations",
                        resp.results.len(),
                        pending.len()
                    )));
                }
                Ok(pending
                    .into_iter()
                    .zip(&resp.results)
                    .map(|(acl, r)| {
                        let err = resource_error(r.error_code, r.error_message.as_deref(), || {
                            format!("CreateAcls for {acl}")
                        });
                        (acl, err.map_or(Ok(()), Err))
                    })
                    .collect())
            })
            .await)
    }

    /// The ACLs matching `filter` (DescribeAcls). Bindings with codes this client does not
    /// know (a newer resource type) are left out.
    pub async fn describe_acls(&self, filter: &AclBindingFilter) -> Result<Vec<AclBinding>> {
        let (rt, pt, op, perm) = filter.codes();
        let inner = self.inner();
        inner
            .retrying(ApiKey::DescribeAcls, || async {
                let (_, resp) = self
                    .call(Target::Controller, ApiKey::DescribeAcls, |_| {
                        Ok(DescribeAclsRequest::default()
                            .with_resource_type_filter(rt)
                            .with_resource_name_filter(
                                filter.resource_name.as_deref().map(str_bytes),
                            )
                            .with_pattern_type_filter(pt)
                            .with_principal_filter(filter.principal.as_deref().map(str_bytes))
                            .with_host_filter(filter.host.as_deref().map(str_bytes))
                            .with_operation(op)
                            .with_permission_type(perm))
                    })
                    .await?;
                Error::check_code(resp.error_code, resp.error_message.as_deref(), || {
                    format!("DescribeAcls for {filter}")
                })?;
                let mut out: Vec<AclBinding> = resp
                    .resources
                    .iter()
                    .flat_map(|r| {
                        r.acls.iter().filter_map(move |a| {
                            AclBinding::from_wire(
                                r.resource_type,
                                &r.resource_name,
                                r.pattern_type,
                                &a.principal,
                                &a.host,
                                a.operation,
                                a.permission_type,
                            )
                        })
                    })
                    .collect();
                out.sort_by_key(|b| b.to_string());
                Ok(out)
            })
            .await
    }

    /// Deletes the ACLs matching each filter (DeleteAcls) and reports, per filter, the
    /// bindings it deleted (or the filter's error).
    pub async fn delete_acls(
        &self,
        filters: &[AclBindingFilter],
    ) -> Result<Vec<ResourceResult<AclBindingFilter, Vec<AclBinding>>>> {
        Ok(self
            .per_resource(ApiKey::DeleteAcls, filters.to_vec(), |pending| async move {
                let (_, resp) = self
                    .call(Target::Controller, ApiKey::DeleteAcls, |_| {
                        Ok(DeleteAclsRequest::default().with_filters(
                            pending
                                .iter()
                                .map(|f| {
                                    let (rt, pt, op, perm) = f.codes();
                                    DeleteAclsFilter::default()
                                        .with_resource_type_filter(rt)
                                        .with_resource_name_filter(
                                            f.resource_name.as_deref().map(str_bytes),
                                        )
                                        .with_pattern_type_filter(pt)
                                        .with_principal_filter(
                                            f.principal.as_deref().map(str_bytes),
                                        )
                                        .with_host_filter(f.host.as_deref().map(str_bytes))
                                        .with_operation(op)
                                        .with_permission_type(perm)
                                })
                                .collect(),
                        ))
                    })
                    .await?;
                if resp.filter_results.len() != pending.len() {
                    return Err(Error::protocol(format!(
                        "DeleteAcls answered {} results for {} filters",
                        resp.filter_results.len(),
                        pending.len()
                    )));
                }
                Ok(pending
                    .into_iter()
                    .zip(&resp.filter_results)
                    .map(|(f, r)| {
                        let result =
                            match resource_error(r.error_code, r.error_message.as_deref(), || {
                                format!("DeleteAcls for {f}")
                            }) {
                                Some(e) => Err(e),
                                None => r
                                    .matching_acls
                                    .iter()
                                    .filter_map(|m| {
                                        if let Some(e) = resource_error(
                                            m.error_code,
                                            m.error_message.as_deref(),
                                            || format!("DeleteAcls for {f}"),
                                        ) {
                                            return Some(Err(e));
                                        }
                                        AclBinding::from_wire(
                                            m.resource_type,
                                            &m.resource_name,
                                            m.pattern_type,
                                            &m.principal,
                                            &m.host,
                                            m.operation,
                                            m.permission_type,
                                        )
                                        .map(Ok)
                                    })
                                    .collect::<Result<Vec<_>>>(),
                            };
                        (f, result)
                    })
                    .collect())
            })
            .await)
    }
}

impl fmt::Display for AclBinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} on {}:{}{} from {}",
            match self.permission {
                AclPermission::Allow => "ALLOW",
                AclPermission::Deny => "DENY",
            },
            self.principal,
            self.operation.name(),
            self.resource_type.name(),
            self.resource_name,
            match self.pattern_type {
                AclPatternType::Literal => "",
                AclPatternType::Prefixed => "*",
            },
            self.host
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_map_to_kafkas_codes_and_read_well() {
        let b = AclBinding::new(
            AclResourceType::Topic,
            "orders",
            "User:alice",
            AclOperation::Write,
            AclPermission::Allow,
        )
        .prefixed();
        let c = b.to_creation();
        assert_eq!(
            (
                c.resource_type,
                c.resource_pattern_type,
                c.operation,
                c.permission_type
            ),
            (2, 4, 4, 3)
        );
        assert_eq!(c.host.as_str(), "*");
        assert_eq!(
            b.to_string(),
            "ALLOW User:alice WRITE on TOPIC:orders* from *"
        );
        let back = AclBinding::from_wire(2, "orders", 4, "User:alice", "*", 4, 3).unwrap();
        assert_eq!(back, b);
        // A resource type this client does not know (USER, 7) is left out.
        assert!(AclBinding::from_wire(7, "x", 3, "User:a", "*", 4, 3).is_none());
    }

    #[test]
    fn filters_use_any_for_unset_fields() {
        assert_eq!(AclBindingFilter::any().codes(), (1, 1, 1, 1));
        let b = AclBinding::new(
            AclResourceType::Group,
            "g",
            "User:bob",
            AclOperation::Read,
            AclPermission::Deny,
        );
        assert_eq!(AclBindingFilter::exact(&b).codes(), (3, 3, 3, 2));
        for code in 2..=12 {
            assert_eq!(AclOperation::from_code(code).unwrap().code(), code);
        }
    }
}
