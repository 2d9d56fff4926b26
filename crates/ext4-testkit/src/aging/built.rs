//! Images the kernel built, for tests that start from what the kernel
//! made rather than what mke2fs or the library made: an aging
//! configuration's image after the kernel's build round and the thinning
//! of its big directories (htrees with holes, deep extent trees, shared
//! xattr blocks, EA inodes, inline data, every link kind), untouched by
//! the library.

use std::path::Path;

use super::config::{Config, Scale};
use super::model::Model;
use super::{host, mke2fs, mount, name_seed, structures, unmount};
use crate::rng::Rng;

/// Makes `image` for `cfg` (mke2fs with `seed`'s UUID and hash seed), lets
/// the kernel build every structure on it through a loop mount, and
/// returns what it built (as the aging report's `structures` says it).
pub fn kernel_built(cfg: &Config, scale: Scale, seed: u64, image: &Path) -> Result<String, String> {
    rustix::process::umask(rustix::fs::Mode::empty());
    mke2fs(cfg, scale, seed, image)?;
    let mut rng = Rng::new(seed ^ name_seed(cfg.name));
    let mut model = Model::new(cfg.traits(scale));
    let m = mount(image, "")?;
    let build = model.build_round(&mut rng);
    apply_all(m.path(), &mut model, build)?;
    let thin = model.thin_big_dirs(&mut rng);
    apply_all(m.path(), &mut model, thin)?;
    unmount(m)?;
    structures(image, cfg, scale)
}

/// Applies every operation through the mount; each must succeed.
fn apply_all(root: &Path, model: &mut Model, ops: Vec<super::ops::Op>) -> Result<(), String> {
    for op in ops {
        host::apply(root, &op).map_err(|e| format!("`{op}` failed on the kernel's mount: {}", ext4_fs::errno_name(e)))?;
        model.apply(&op);
    }
    Ok(())
}
