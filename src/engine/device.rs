//! Which compute device the engine runs on: the one place that names a concrete burn backend.
//!
//! Policy (announced to the user, never silent):
//! - `Auto` (default): a hardware GPU adapter through wgpu (Vulkan, Metal or DX12) when one is
//!   present; otherwise burn's pure-Rust CPU backend (`flex`). A *software* Vulkan adapter such
//!   as Mesa's llvmpipe/lavapipe is not taken automatically, because `flex` is faster than it on
//!   the same cores (measured in `shared/design/rust-stack.md` §1.3).
//! - `Gpu` (`M2C_DEVICE=gpu`): wgpu on the best adapter, software adapters included. When there
//!   is no adapter at all, the CPU backend is used and the reason says so.
//! - `Cpu` (`M2C_DEVICE=cpu`): the CPU backend.
//!
//! This file is self-contained (no other module of ours), so that tests and tools can include it.

use std::fmt;
use std::sync::OnceLock;

use burn::tensor::{Device, DeviceKind};

/// Environment variable that overrides the automatic choice: `gpu`, `cpu` or `auto`.
pub const DEVICE_ENV: &str = "M2C_DEVICE";

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DevicePreference {
    /// Hardware GPU when present, else the CPU backend.
    #[default]
    Auto,
    /// wgpu on any adapter, software ones included.
    Gpu,
    /// burn's pure-Rust CPU backend.
    Cpu,
}

impl DevicePreference {
    /// Parses `gpu`, `cpu` or `auto` (case-insensitive); an empty value means `auto`.
    pub fn parse(value: &str) -> Result<Self, DeviceError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Self::Auto),
            "gpu" | "wgpu" => Ok(Self::Gpu),
            "cpu" => Ok(Self::Cpu),
            _ => Err(DeviceError::InvalidPreference {
                value: value.to_owned(),
            }),
        }
    }

    /// Reads [`DEVICE_ENV`]; unset means `Auto`.
    pub fn from_env() -> Result<Self, DeviceError> {
        match std::env::var(DEVICE_ENV) {
            Ok(value) => Self::parse(&value),
            Err(std::env::VarError::NotPresent) => Ok(Self::Auto),
            Err(std::env::VarError::NotUnicode(_)) => Err(DeviceError::InvalidPreference {
                value: "<not unicode>".to_owned(),
            }),
        }
    }
}

impl fmt::Display for DevicePreference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Gpu => "gpu",
            Self::Cpu => "cpu",
        })
    }
}

/// Errors of device selection.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// `M2C_DEVICE` holds something other than gpu/cpu/auto.
    #[error("invalid {DEVICE_ENV} value {value:?}: expected gpu, cpu or auto")]
    InvalidPreference { value: String },
    /// burn could not bring up its wgpu runtime on the chosen adapter.
    #[error("could not initialise the GPU runtime on {adapter:?}: {message}")]
    WgpuInit { adapter: String, message: String },
    /// No wgpu adapter exists (no Vulkan/Metal/DX12 driver).
    #[error("no GPU adapter found (no Vulkan, Metal or DX12 driver)")]
    NoAdapter,
}

/// Kind of a wgpu adapter, in the user's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterKind {
    DiscreteGpu,
    IntegratedGpu,
    VirtualGpu,
    /// A software rasteriser (llvmpipe/lavapipe, WARP, SwiftShader).
    Software,
    Other,
}

impl fmt::Display for AdapterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DiscreteGpu => "discrete GPU",
            Self::IntegratedGpu => "integrated GPU",
            Self::VirtualGpu => "virtual GPU",
            Self::Software => "software (CPU) adapter",
            Self::Other => "other adapter",
        })
    }
}

/// What wgpu reports about one adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSummary {
    pub name: String,
    /// Graphics API: Vulkan, Metal, Dx12.
    pub api: String,
    pub kind: AdapterKind,
    pub driver: String,
    /// `SHADER_F16`: half-precision weights and activations are possible.
    pub shader_f16: bool,
    /// Largest storage buffer binding, in bytes (bounds the largest tensor).
    pub max_buffer_bytes: u64,
}

impl AdapterSummary {
    fn from_info(
        info: &wgpu::AdapterInfo,
        features: wgpu::Features,
        limits: &wgpu::Limits,
    ) -> Self {
        let kind = match info.device_type {
            wgpu::DeviceType::DiscreteGpu => AdapterKind::DiscreteGpu,
            wgpu::DeviceType::IntegratedGpu => AdapterKind::IntegratedGpu,
            wgpu::DeviceType::VirtualGpu => AdapterKind::VirtualGpu,
            wgpu::DeviceType::Cpu => AdapterKind::Software,
            wgpu::DeviceType::Other => AdapterKind::Other,
        };
        Self {
            name: info.name.clone(),
            api: format!("{:?}", info.backend),
            kind,
            driver: format!("{} {}", info.driver, info.driver_info)
                .trim()
                .to_owned(),
            shader_f16: features.contains(wgpu::Features::SHADER_F16),
            max_buffer_bytes: limits.max_storage_buffer_binding_size,
        }
    }

    fn is_hardware(&self) -> bool {
        matches!(
            self.kind,
            AdapterKind::DiscreteGpu | AdapterKind::IntegratedGpu | AdapterKind::VirtualGpu
        )
    }

    fn rank(&self) -> u8 {
        match self.kind {
            AdapterKind::DiscreteGpu => 0,
            AdapterKind::IntegratedGpu => 1,
            AdapterKind::VirtualGpu => 2,
            AdapterKind::Other => 3,
            AdapterKind::Software => 4,
        }
    }
}

/// The backend the engine will run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendChoice {
    /// burn's wgpu backend on an adapter.
    Wgpu,
    /// burn's pure-Rust CPU backend (`flex`).
    Cpu,
}

/// The outcome of device selection: what runs, on which adapter, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePlan {
    pub preference: DevicePreference,
    pub backend: BackendChoice,
    /// The adapter used (wgpu) or the best one seen but not used (CPU fallback).
    pub adapter: Option<AdapterSummary>,
    /// Every adapter wgpu listed.
    pub adapters: Vec<AdapterSummary>,
    /// One sentence for the user.
    pub reason: String,
}

impl DevicePlan {
    /// The one line `m2c doctor` and the app's status bar show.
    pub fn device_line(&self) -> String {
        match (self.backend, &self.adapter) {
            (BackendChoice::Wgpu, Some(a)) => format!(
                "device: GPU (wgpu/{}) on {} [{}], f16 {}",
                a.api,
                a.name,
                a.kind,
                if a.shader_f16 { "yes" } else { "no" }
            ),
            (BackendChoice::Wgpu, None) => "device: GPU (wgpu)".to_owned(),
            (BackendChoice::Cpu, _) => "device: CPU (burn flex backend, pure Rust)".to_owned(),
        }
    }
}

/// Lists the wgpu adapters on the primary APIs (Vulkan, Metal, DX12); never OpenGL, which
/// burn's compute backend does not use. Honours wgpu's `WGPU_BACKEND` variable.
pub fn probe_adapters() -> Vec<AdapterSummary> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::PRIMARY;
    let desc = desc.with_env();
    let instance = wgpu::Instance::new(desc);
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY));
    let mut out: Vec<AdapterSummary> = adapters
        .iter()
        .map(|a| AdapterSummary::from_info(&a.get_info(), a.features(), &a.limits()))
        .collect();
    out.sort_by_key(AdapterSummary::rank);
    out
}

/// Decides the backend from a preference and the adapters present. Pure: no I/O.
pub fn plan(preference: DevicePreference, adapters: Vec<AdapterSummary>) -> DevicePlan {
    let best = adapters.first().cloned();
    let (backend, reason) = match (preference, &best) {
        (DevicePreference::Cpu, _) => (
            BackendChoice::Cpu,
            format!("{DEVICE_ENV}=cpu asks for the CPU backend"),
        ),
        (DevicePreference::Gpu, Some(a)) => (
            BackendChoice::Wgpu,
            format!(
                "{DEVICE_ENV}=gpu asks for wgpu; best adapter is a {}",
                a.kind
            ),
        ),
        (DevicePreference::Gpu, None) => (
            BackendChoice::Cpu,
            format!(
                "{DEVICE_ENV}=gpu asks for wgpu but no adapter was found; using the CPU backend"
            ),
        ),
        (DevicePreference::Auto, Some(a)) if a.is_hardware() => {
            (BackendChoice::Wgpu, format!("a {} is present", a.kind))
        }
        (DevicePreference::Auto, Some(a)) => (
            BackendChoice::Cpu,
            format!(
                "no hardware GPU found, only {} ({}), which is slower than the CPU backend; \
                 set {DEVICE_ENV}=gpu to use it anyway",
                a.name, a.kind
            ),
        ),
        (DevicePreference::Auto, None) => (
            BackendChoice::Cpu,
            "no GPU adapter found (no Vulkan, Metal or DX12 driver); using the CPU backend"
                .to_owned(),
        ),
    };
    DevicePlan {
        preference,
        backend,
        adapter: best,
        adapters,
        reason,
    }
}

/// Probes the adapters and plans with the preference from the environment.
pub fn plan_from_env() -> Result<DevicePlan, DeviceError> {
    Ok(plan_for(DevicePreference::from_env()?))
}

/// Probes the adapters (unless the CPU was asked for) and plans.
pub fn plan_for(preference: DevicePreference) -> DevicePlan {
    let adapters = match preference {
        // Do not even touch the GPU driver when the user asked for the CPU.
        DevicePreference::Cpu => Vec::new(),
        _ => probe_adapters(),
    };
    plan(preference, adapters)
}

/// The burn device for a plan. wgpu runtimes are process-wide and initialised once; later
/// calls return a clone of the first device.
pub fn open(plan: &DevicePlan) -> Result<Device, DeviceError> {
    match plan.backend {
        BackendChoice::Cpu => Ok(cpu_device()),
        BackendChoice::Wgpu => {
            let kind = match plan.adapter.as_ref().map(|a| a.kind) {
                Some(AdapterKind::DiscreteGpu) => DeviceKind::DiscreteGpu(0),
                Some(AdapterKind::IntegratedGpu) => DeviceKind::IntegratedGpu(0),
                Some(AdapterKind::VirtualGpu) => DeviceKind::VirtualGpu(0),
                Some(AdapterKind::Software) => DeviceKind::Cpu,
                Some(AdapterKind::Other) | None => DeviceKind::DefaultDevice,
            };
            let name = plan
                .adapter
                .as_ref()
                .map_or_else(|| "default adapter".to_owned(), |a| a.name.clone());
            wgpu_device_of_kind(kind, &name)
        }
    }
}

/// burn's pure-Rust CPU device. Always available.
pub fn cpu_device() -> Device {
    Device::flex()
}

/// A wgpu device on the best adapter (software adapters included), for tests and tools.
pub fn wgpu_device() -> Result<Device, DeviceError> {
    let adapters = probe_adapters();
    if adapters.is_empty() {
        return Err(DeviceError::NoAdapter);
    }
    open(&plan(DevicePreference::Gpu, adapters))
}

fn wgpu_device_of_kind(kind: DeviceKind, adapter_name: &str) -> Result<Device, DeviceError> {
    // burn refuses to initialise the same runtime twice: keep the first result.
    static WGPU: OnceLock<Result<Device, String>> = OnceLock::new();
    let result = WGPU.get_or_init(|| {
        Device::wgpu_options()
            .device_kind(kind)
            .init()
            .map_err(|e| e.to_string())
    });
    match result {
        Ok(device) => Ok(device.clone()),
        Err(message) => Err(DeviceError::WgpuInit {
            adapter: adapter_name.to_owned(),
            message: message.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(kind: AdapterKind) -> AdapterSummary {
        AdapterSummary {
            name: format!("{kind}"),
            api: "Vulkan".into(),
            kind,
            driver: String::new(),
            shader_f16: true,
            max_buffer_bytes: 1 << 30,
        }
    }

    #[test]
    fn parses_preferences_and_rejects_garbage() {
        assert_eq!(
            DevicePreference::parse("GPU").unwrap(),
            DevicePreference::Gpu
        );
        assert_eq!(
            DevicePreference::parse(" cpu ").unwrap(),
            DevicePreference::Cpu
        );
        assert_eq!(DevicePreference::parse("").unwrap(), DevicePreference::Auto);
        let err = DevicePreference::parse("cuda").unwrap_err();
        assert!(err.to_string().contains("\"cuda\""), "{err}");
    }

    #[test]
    fn auto_takes_a_hardware_gpu() {
        let p = plan(
            DevicePreference::Auto,
            vec![
                adapter(AdapterKind::DiscreteGpu),
                adapter(AdapterKind::Software),
            ],
        );
        assert_eq!(p.backend, BackendChoice::Wgpu);
        assert_eq!(p.adapter.unwrap().kind, AdapterKind::DiscreteGpu);
    }

    #[test]
    fn auto_falls_back_to_cpu_on_software_adapter_and_says_why() {
        let p = plan(DevicePreference::Auto, vec![adapter(AdapterKind::Software)]);
        assert_eq!(p.backend, BackendChoice::Cpu);
        assert!(p.reason.contains("M2C_DEVICE=gpu"), "{}", p.reason);
        assert!(p.device_line().contains("CPU"));
    }

    #[test]
    fn auto_without_adapters_uses_cpu() {
        let p = plan(DevicePreference::Auto, Vec::new());
        assert_eq!(p.backend, BackendChoice::Cpu);
        assert!(p.reason.contains("no GPU adapter"), "{}", p.reason);
    }

    #[test]
    fn gpu_preference_takes_software_adapter_but_falls_back_without_any() {
        let p = plan(DevicePreference::Gpu, vec![adapter(AdapterKind::Software)]);
        assert_eq!(p.backend, BackendChoice::Wgpu);
        assert!(p.device_line().contains("f16 yes"));
        let p = plan(DevicePreference::Gpu, Vec::new());
        assert_eq!(p.backend, BackendChoice::Cpu);
    }

    #[test]
    fn cpu_preference_wins_over_a_gpu() {
        let p = plan(
            DevicePreference::Cpu,
            vec![adapter(AdapterKind::DiscreteGpu)],
        );
        assert_eq!(p.backend, BackendChoice::Cpu);
    }
}
