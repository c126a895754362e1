//! Access control lists: the typed bindings [`Admin::create_acls`](crate::Admin::create_acls)
//! sends (CreateAcls, KIP-140), with no kafka-protocol type in the public API.
//!
//! Each enum maps to the wire codes Kafka's `AclOperation`, `ResourceType`, `PatternType` and
//! `AclPermissionType` define; `Display` gives the names Kafka's own tools print, so errors
//! can name the binding that failed.

use std::fmt;

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::protocol::StrBytes;

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

/// How the resource name matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AclPatternType {
    /// The exact name (`*` matches every resource of the type).
    Literal,
    /// Every resource whose name starts with it.
    Prefixed,
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
            .with_resource_pattern_type(match self.pattern_type {
                AclPatternType::Literal => 3,
                AclPatternType::Prefixed => 4,
            })
            .with_principal(StrBytes::from_string(self.principal.clone()))
            .with_host(StrBytes::from_string(self.host.clone()))
            .with_operation(self.operation.code())
            .with_permission_type(match self.permission {
                AclPermission::Deny => 2,
                AclPermission::Allow => 3,
            })
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
    }
}
