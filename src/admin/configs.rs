//! Configurations of topics, brokers, broker loggers and groups: describe (with where each
//! value comes from, and its synonyms) and incremental alter (KIP-339).
//!
//! A broker's own resource goes to that broker (only it knows its static and per-broker
//! values); the others, and the cluster-wide broker default (empty name), to any broker.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, IncrementalAlterConfigsRequest};

use super::{resource_error, Admin, ResourceResult, Target};
use crate::error::{Error, Result};
use crate::protocol::str_bytes;

/// The kind of resource a configuration belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ConfigResourceType {
    /// A topic.
    Topic,
    /// A broker (by id; an empty name is the cluster-wide default).
    Broker,
    /// A broker's log4j loggers.
    BrokerLogger,
    /// A consumer or share group (KIP-848 group configs).
    Group,
}

impl ConfigResourceType {
    fn code(self) -> i8 {
        match self {
            ConfigResourceType::Topic => 2,
            ConfigResourceType::Broker => 4,
            ConfigResourceType::BrokerLogger => 8,
            ConfigResourceType::Group => 32,
        }
    }
}

/// A resource whose configuration is described or altered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct ConfigResource {
    /// Its kind.
    pub resource_type: ConfigResourceType,
    /// Its name: the topic or group name, or the broker id in decimal.
    pub name: String,
}

impl ConfigResource {
    /// A topic's configuration.
    pub fn topic(name: impl Into<String>) -> ConfigResource {
        ConfigResource {
            resource_type: ConfigResourceType::Topic,
            name: name.into(),
        }
    }

    /// A broker's configuration.
    pub fn broker(id: i32) -> ConfigResource {
        ConfigResource {
            resource_type: ConfigResourceType::Broker,
            name: id.to_string(),
        }
    }

    /// The cluster-wide default broker configuration (dynamic defaults).
    pub fn broker_default() -> ConfigResource {
        ConfigResource {
            resource_type: ConfigResourceType::Broker,
            name: String::new(),
        }
    }

    /// A broker's loggers.
    pub fn broker_logger(id: i32) -> ConfigResource {
        ConfigResource {
            resource_type: ConfigResourceType::BrokerLogger,
            name: id.to_string(),
        }
    }

    /// A group's configuration.
    pub fn group(name: impl Into<String>) -> ConfigResource {
        ConfigResource {
            resource_type: ConfigResourceType::Group,
            name: name.into(),
        }
    }

    /// Which broker must answer for this resource.
    fn target(&self) -> Result<Target> {
        match self.resource_type {
            ConfigResourceType::Broker | ConfigResourceType::BrokerLogger
                if !self.name.is_empty() =>
            {
                self.name.parse().map(Target::Broker).map_err(|_| {
                    Error::InvalidInput(
                        format!("broker config resource `{}` is not a broker id", self.name).into(),
                    )
                })
            }
            _ => Ok(Target::Any),
        }
    }

    fn matches(&self, resource_type: i8, name: &str) -> bool {
        self.resource_type.code() == resource_type && self.name == name
    }
}

impl std::fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.resource_type {
            ConfigResourceType::Topic => "topic",
            ConfigResourceType::Broker => "broker",
            ConfigResourceType::BrokerLogger => "broker logger",
            ConfigResourceType::Group => "group",
        };
        write!(f, "{kind} `{}`", self.name)
    }
}

/// Where a configuration value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConfigSource {
    /// A topic override (`kafka-configs --entity-type topics`).
    DynamicTopic,
    /// A per-broker dynamic value.
    DynamicBroker,
    /// The cluster-wide dynamic broker default.
    DynamicDefaultBroker,
    /// The broker's `server.properties`.
    StaticBroker,
    /// Kafka's built-in default.
    Default,
    /// A dynamic broker logger level.
    DynamicBrokerLogger,
    /// A client-metrics subscription.
    ClientMetrics,
    /// A group override.
    Group,
    /// A source this client does not know.
    Unknown,
}

impl ConfigSource {
    fn from_code(code: i8) -> ConfigSource {
        match code {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            6 => ConfigSource::DynamicBrokerLogger,
            7 => ConfigSource::ClientMetrics,
            8 => ConfigSource::Group,
            _ => ConfigSource::Unknown,
        }
    }
}

/// A value the entry's effective value overrides, or takes from (in precedence order).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigSynonym {
    /// The synonym's name (a broker setting may back a topic setting under another name).
    pub name: String,
    /// Its value (`None` when sensitive).
    pub value: Option<String>,
    /// Where it is set.
    pub source: ConfigSource,
}

/// One configuration entry of a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConfigEntry {
    /// The setting's name.
    pub name: String,
    /// Its effective value; `None` when it is sensitive (passwords) or unset.
    pub value: Option<String>,
    /// Where the effective value comes from.
    pub source: ConfigSource,
    /// Whether it can only be changed by restarting the broker.
    pub read_only: bool,
    /// Whether it is sensitive (its value is never sent).
    pub sensitive: bool,
    /// The values it overrides or inherits, first the effective one.
    pub synonyms: Vec<ConfigSynonym>,
}

/// One change of [`Admin::incremental_alter_configs`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AlterConfigOp {
    /// Sets the value.
    Set(String, String),
    /// Removes the override: the value falls back to the next source.
    Delete(String),
    /// Appends to a list value.
    Append(String, String),
    /// Removes from a list value.
    Subtract(String, String),
}

impl AlterConfigOp {
    /// Sets `name` to `value`.
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp::Set(name.into(), value.into())
    }

    /// Removes the override of `name`.
    pub fn delete(name: impl Into<String>) -> AlterConfigOp {
        AlterConfigOp::Delete(name.into())
    }

    fn to_wire(&self) -> AlterableConfig {
        let (name, op, value) = match self {
            AlterConfigOp::Set(n, v) => (n, 0, Some(v)),
            AlterConfigOp::Delete(n) => (n, 1, None),
            AlterConfigOp::Append(n, v) => (n, 2, Some(v)),
            AlterConfigOp::Subtract(n, v) => (n, 3, Some(v)),
        };
        AlterableConfig::default()
            .with_name(str_bytes(name))
            .with_config_operation(op)
            .with_value(value.map(|v| str_bytes(v)))
    }
}

/// Pending resources per broker that must answer for them.
fn by_target(
    pending: &[ConfigResource],
) -> Result<BTreeMap<String, (Target, Vec<ConfigResource>)>> {
    let mut out: BTreeMap<String, (Target, Vec<ConfigResource>)> = BTreeMap::new();
    for r in pending {
        let target = r.target()?;
        out.entry(format!("{target:?}"))
            .or_insert_with(|| (target, Vec::new()))
            .1
            .push(r.clone());
    }
    Ok(out)
}

impl Admin {
    /// Describes the configuration of each resource, with each entry's source and synonyms.
    /// A resource that does not exist gets its own error (UNKNOWN_TOPIC_OR_PARTITION for a
    /// topic).
    pub async fn describe_configs(
        &self,
        resources: &[ConfigResource],
    ) -> Result<Vec<ResourceResult<ConfigResource, Vec<ConfigEntry>>>> {
        by_target(resources)?;
        Ok(self
            .per_resource(
                ApiKey::DescribeConfigs,
                resources.to_vec(),
                |pending| async move {
                    let mut answers = Vec::new();
                    for (_, (target, group)) in by_target(&pending)? {
                        let (_, resp) = self
                            .call(target, ApiKey::DescribeConfigs, |_| {
                                Ok(DescribeConfigsRequest::default()
                                    .with_include_synonyms(true)
                                    .with_resources(
                                        group
                                            .iter()
                                            .map(|r| {
                                                DescribeConfigsResource::default()
                                                    .with_resource_type(r.resource_type.code())
                                                    .with_resource_name(str_bytes(&r.name))
                                                    .with_configuration_keys(None)
                                            })
                                            .collect(),
                                    ))
                            })
                            .await?;
                        for res in &resp.results {
                            let Some(r) = group
                                .iter()
                                .find(|r| r.matches(res.resource_type, res.resource_name.as_str()))
                            else {
                                continue;
                            };
                            let result = match resource_error(
                                res.error_code,
                                res.error_message.as_deref(),
                                || format!("DescribeConfigs for {r}"),
                            ) {
                                Some(e) => Err(e),
                                None => Ok(res
                                    .configs
                                    .iter()
                                    .map(|c| ConfigEntry {
                                        name: c.name.to_string(),
                                        value: c.value.as_ref().map(|v| v.to_string()),
                                        source: ConfigSource::from_code(c.config_source),
                                        read_only: c.read_only,
                                        sensitive: c.is_sensitive,
                                        synonyms: c
                                            .synonyms
                                            .iter()
                                            .map(|s| ConfigSynonym {
                                                name: s.name.to_string(),
                                                value: s.value.as_ref().map(|v| v.to_string()),
                                                source: ConfigSource::from_code(s.source),
                                            })
                                            .collect(),
                                    })
                                    .collect()),
                            };
                            answers.push((r.clone(), result));
                        }
                    }
                    Ok(answers)
                },
            )
            .await)
    }

    /// Changes configurations incrementally (set, delete, append, subtract per setting),
    /// or with `validate_only` checks the changes. Each resource gets its own result
    /// (INVALID_CONFIG for a bad value or an unknown setting, UNKNOWN_TOPIC_OR_PARTITION for
    /// a missing topic, …).
    pub async fn incremental_alter_configs(
        &self,
        changes: &[(ConfigResource, Vec<AlterConfigOp>)],
        validate_only: bool,
    ) -> Result<Vec<ResourceResult<ConfigResource, ()>>> {
        let keys: Vec<ConfigResource> = changes.iter().map(|(r, _)| r.clone()).collect();
        by_target(&keys)?;
        let ops_of = |r: &ConfigResource| -> Vec<AlterableConfig> {
            changes
                .iter()
                .filter(|(c, _)| c == r)
                .flat_map(|(_, ops)| ops.iter().map(AlterConfigOp::to_wire))
                .collect()
        };
        Ok(self
            .per_resource(
                ApiKey::IncrementalAlterConfigs,
                keys,
                |pending| async move {
                    let mut answers = Vec::new();
                    for (_, (target, group)) in by_target(&pending)? {
                        // Topic and group changes are the controller's; a broker's own settings
                        // go to that broker.
                        let target = match target {
                            Target::Any => Target::Controller,
                            t => t,
                        };
                        let (_, resp) = self
                            .call(target, ApiKey::IncrementalAlterConfigs, |_| {
                                Ok(IncrementalAlterConfigsRequest::default()
                                    .with_validate_only(validate_only)
                                    .with_resources(
                                        group
                                            .iter()
                                            .map(|r| {
                                                AlterConfigsResource::default()
                                                    .with_resource_type(r.resource_type.code())
                                                    .with_resource_name(str_bytes(&r.name))
                                                    .with_configs(ops_of(r))
                                            })
                                            .collect(),
                                    ))
                            })
                            .await?;
                        for res in &resp.responses {
                            let Some(r) = group
                                .iter()
                                .find(|r| r.matches(res.resource_type, res.resource_name.as_str()))
                            else {
                                continue;
                            };
                            let err = resource_error(
                                res.error_code,
                                res.error_message.as_deref(),
                                || format!("IncrementalAlterConfigs for {r}"),
                            );
                            answers.push((r.clone(), err.map_or(Ok(()), Err)));
                        }
                    }
                    Ok(answers)
                },
            )
            .await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_resources_go_to_their_broker() {
        assert!(matches!(
            ConfigResource::broker(3).target(),
            Ok(Target::Broker(3))
        ));
        assert!(matches!(
            ConfigResource::broker_default().target(),
            Ok(Target::Any)
        ));
        assert!(matches!(
            ConfigResource::topic("t").target(),
            Ok(Target::Any)
        ));
        let bad = ConfigResource {
            resource_type: ConfigResourceType::Broker,
            name: "x".into(),
        };
        assert!(matches!(bad.target(), Err(Error::InvalidInput(_))));
    }

    #[test]
    fn ops_map_to_kafkas_operation_codes() {
        let w = AlterConfigOp::set("retention.ms", "1").to_wire();
        assert_eq!((w.config_operation, w.value.as_deref()), (0, Some("1")));
        let w = AlterConfigOp::delete("retention.ms").to_wire();
        assert_eq!((w.config_operation, w.value), (1, None));
        let w = AlterConfigOp::Append("a".into(), "b".into()).to_wire();
        assert_eq!(w.config_operation, 2);
        assert_eq!(ConfigSource::from_code(1), ConfigSource::DynamicTopic);
        assert_eq!(ConfigSource::from_code(5), ConfigSource::Default);
        assert_eq!(ConfigSource::from_code(42), ConfigSource::Unknown);
    }
}
