//! The shape of a component: what instantiating it creates.
//!
//! A plan's memory limit is a total for the whole instance, but a component may
//! instantiate many core modules, each with memories and tables of its own. The
//! runtime enforces the total while the instance runs (see `budget`); this
//! module reads the same numbers from the binary at install time, so a
//! component that could never fit is refused with a message naming what is too
//! big instead of failing at its first event.

use serde::{Deserialize, Serialize};
use wasmparser::{
    ComponentAlias, ComponentExternalKind, ComponentInstance, ComponentOuterAliasKind,
    ComponentTypeRef, Encoding, Instance, Parser, Payload,
};

/// What one instantiation of a component creates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Structure {
    pub core_instances: u32,
    pub component_instances: u32,
    pub memories: u32,
    pub tables: u32,
    /// The sum of the memories' initial sizes.
    pub initial_memory_bytes: u64,
}

impl Structure {
    fn add(&mut self, other: &Structure) {
        self.core_instances = self.core_instances.saturating_add(other.core_instances);
        self.component_instances = self
            .component_instances
            .saturating_add(other.component_instances);
        self.memories = self.memories.saturating_add(other.memories);
        self.tables = self.tables.saturating_add(other.tables);
        self.initial_memory_bytes = self
            .initial_memory_bytes
            .saturating_add(other.initial_memory_bytes);
    }
}

/// The most of each thing one instance of a feature may create. The defaults
/// admit what componentize-py and componentize-js emit today (measured in
/// docs/SECURITY.md) with room to spare, and nothing like a component that
/// multiplies its memories.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StructureCaps {
    pub core_instances: u32,
    pub component_instances: u32,
    pub memories: u32,
    pub tables: u32,
}

impl Default for StructureCaps {
    fn default() -> Self {
        StructureCaps {
            core_instances: 32,
            component_instances: 8,
            memories: 4,
            tables: 8,
        }
    }
}

impl StructureCaps {
    /// Names the first cap the structure exceeds.
    pub fn check(&self, s: &Structure) -> Result<(), String> {
        let over = |what: &str, n: u32, max: u32| {
            (n > max).then(|| {
                format!(
                    "the component creates {n} {what} per instance; at most {max} are allowed. \
                     Components built by cargo (wasm32-wasip2), componentize-py and \
                     componentize-js fit; one that instantiates extra modules does not"
                )
            })
        };
        match over("core instances", s.core_instances, self.core_instances)
            .or_else(|| {
                over(
                    "component instances",
                    s.component_instances,
                    self.component_instances,
                )
            })
            .or_else(|| over("linear memories", s.memories, self.memories))
            .or_else(|| over("tables", s.tables, self.tables))
        {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }
}

/// One component's index spaces, as far as cost is concerned.
#[derive(Default)]
struct ComponentScope {
    /// The cost of instantiating each core module, by core module index.
    modules: Vec<Structure>,
    /// The cost of instantiating each nested component, by component index.
    components: Vec<Structure>,
    /// What instantiating this component creates.
    total: Structure,
}

enum Scope {
    Module(Structure),
    Component(ComponentScope),
}

/// Reads what instantiating the component `wasm` creates. Modules and
/// components that enter an index space by import or by an alias of an
/// instance's export cost nothing here (their instances were created
/// elsewhere); the runtime's limiter still counts everything that is created.
pub fn measure(wasm: &[u8]) -> Result<Structure, String> {
    let mut stack: Vec<Scope> = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| e.to_string())?;
        match payload {
            Payload::Version { encoding, .. } => stack.push(match encoding {
                Encoding::Module => Scope::Module(Structure::default()),
                Encoding::Component => Scope::Component(ComponentScope::default()),
            }),
            Payload::MemorySection(reader) => {
                let Some(Scope::Module(module)) = stack.last_mut() else {
                    continue;
                };
                for memory in reader {
                    let memory = memory.map_err(|e| e.to_string())?;
                    let page = 1u64 << memory.page_size_log2.unwrap_or(16);
                    module.memories += 1;
                    module.initial_memory_bytes = module
                        .initial_memory_bytes
                        .saturating_add(memory.initial.saturating_mul(page));
                }
            }
            Payload::TableSection(reader) => {
                if let Some(Scope::Module(module)) = stack.last_mut() {
                    module.tables += reader.count();
                }
            }
            Payload::InstanceSection(reader) => {
                let Some(Scope::Component(scope)) = stack.last_mut() else {
                    continue;
                };
                for instance in reader {
                    if let Instance::Instantiate { module_index, .. } =
                        instance.map_err(|e| e.to_string())?
                    {
                        let cost = scope
                            .modules
                            .get(module_index as usize)
                            .copied()
                            .unwrap_or_default();
                        scope.total.add(&cost);
                        scope.total.core_instances += 1;
                    }
                }
            }
            Payload::ComponentInstanceSection(reader) => {
                let Some(Scope::Component(scope)) = stack.last_mut() else {
                    continue;
                };
                for instance in reader {
                    if let ComponentInstance::Instantiate {
                        component_index, ..
                    } = instance.map_err(|e| e.to_string())?
                    {
                        let cost = scope
                            .components
                            .get(component_index as usize)
                            .copied()
                            .unwrap_or_default();
                        scope.total.add(&cost);
                        scope.total.component_instances += 1;
                    }
                }
            }
            Payload::ComponentImportSection(reader) => {
                let Some(Scope::Component(scope)) = stack.last_mut() else {
                    continue;
                };
                for import in reader {
                    match import.map_err(|e| e.to_string())?.ty {
                        ComponentTypeRef::Module(_) => scope.modules.push(Structure::default()),
                        ComponentTypeRef::Component(_) => {
                            scope.components.push(Structure::default())
                        }
                        _ => {}
                    }
                }
            }
            Payload::ComponentAliasSection(reader) => {
                for alias in reader {
                    let alias = alias.map_err(|e| e.to_string())?;
                    let (is_module, cost) = match alias {
                        ComponentAlias::Outer { kind, count, index } => {
                            let is_module = match kind {
                                ComponentOuterAliasKind::CoreModule => true,
                                ComponentOuterAliasKind::Component => false,
                                _ => continue,
                            };
                            let outer = stack
                                .len()
                                .checked_sub(1 + count as usize)
                                .and_then(|i| match &stack[i] {
                                    Scope::Component(outer) => Some(outer),
                                    Scope::Module(_) => None,
                                })
                                .ok_or("an outer alias points past the root")?;
                            let space = if is_module {
                                &outer.modules
                            } else {
                                &outer.components
                            };
                            (
                                is_module,
                                space.get(index as usize).copied().unwrap_or_default(),
                            )
                        }
                        ComponentAlias::InstanceExport {
                            kind: ComponentExternalKind::Module,
                            ..
                        } => (true, Structure::default()),
                        ComponentAlias::InstanceExport {
                            kind: ComponentExternalKind::Component,
                            ..
                        } => (false, Structure::default()),
                        _ => continue,
                    };
                    if let Some(Scope::Component(scope)) = stack.last_mut() {
                        if is_module {
                            scope.modules.push(cost);
                        } else {
                            scope.components.push(cost);
                        }
                    }
                }
            }
            Payload::End(_) => {
                let finished = stack.pop().ok_or("unbalanced sections")?;
                let cost = match finished {
                    Scope::Module(module) => {
                        if let Some(Scope::Component(parent)) = stack.last_mut() {
                            parent.modules.push(module);
                        }
                        continue;
                    }
                    Scope::Component(component) => component.total,
                };
                match stack.last_mut() {
                    Some(Scope::Component(parent)) => parent.components.push(cost),
                    Some(Scope::Module(_)) => return Err("a component inside a module".into()),
                    None => return Ok(cost),
                }
            }
            _ => {}
        }
    }
    Err("the binary ended before its last section".into())
}
