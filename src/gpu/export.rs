//! The compositor as a full-resolution export renderer: pieces of the composite drawn
//! offscreen on the engine's device.

use super::{Compositor, Frame, GpuContext};
use crate::compose::{Composite, RenderFn, SharedScene, ViewRect};

/// The GPU renderer for [`crate::compose::export_composite`] on the engine's device, and the widest piece it
/// draws at once; the reason when there is no GPU, or when it is a software renderer and
/// `allow_software` is false. The layers are uploaded from `shared` without copies.
pub fn export_renderer(
    shared: &SharedScene,
    composite: Composite,
    allow_software: bool,
) -> std::result::Result<(Box<RenderFn<'static>>, usize, String), String> {
    let context = GpuContext::shared().map_err(|e| e.to_string())?;
    if !allow_software && context.info.device_type == wgpu::DeviceType::Cpu {
        return Err(format!(
            "the only adapter, {}, is a software renderer",
            context.adapter_name()
        ));
    }
    let max_width = (context.limits.max_texture_dimension_2d as usize).min(8192);
    let name = context.adapter_name();
    let mut compositor = Compositor::new(&context.device);
    compositor.set_scene(
        &context.device,
        &context.queue,
        &shared.pyramids(),
        shared.warp.as_ref(),
    );
    let overlays = shared.overlay_settings();
    let render = move |view: ViewRect, size: [usize; 2]| {
        let frame = Frame {
            view,
            composite,
            overlays,
            target_origin: [0.0, 0.0],
        };
        let rgba = compositor.render_offscreen(&context.device, &context.queue, frame, size)?;
        context.check()?;
        Ok(rgba)
    };
    Ok((Box::new(render), max_width, name))
}
