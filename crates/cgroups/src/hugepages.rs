//! Huge page sizes: checking the OCI `pageSize` and finding the sizes the kernel offers.
//!
//! A page size becomes part of a file name (`hugetlb.<size>.max`), so it is checked before it
//! can reach a path.

use std::path::Path;

use crate::error::{CgroupError, Result};
use crate::fs;
use crate::resource_values::invalid;

/// A huge page size as the kernel names it in hugetlb files: digits and `KB`, `MB` or `GB`.
pub(crate) fn checked_page_size(page_size: &str) -> Result<&str> {
    let digits = page_size
        .strip_suffix("KB")
        .or_else(|| page_size.strip_suffix("MB"))
        .or_else(|| page_size.strip_suffix("GB"));
    match digits {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(page_size)
        }
        _ => Err(invalid(
            format!("linux.resources.hugepageLimits pageSize {page_size:?}"),
            "expected a number followed by KB, MB or GB (e.g. 2MB)",
        )),
    }
}

/// A page size the kernel does not offer has no files; say so instead of a bare ENOENT.
pub(crate) fn require_page_size(dir: &Path, size: &str, file: &str) -> Result<()> {
    if fs::exists(&dir.join(file)) {
        return Ok(());
    }
    Err(CgroupError::InvalidResource {
        resource: format!("linux.resources.hugepageLimits pageSize {size:?}"),
        reason: format!(
            "this kernel has no {size} huge pages ({} does not exist)",
            dir.join(file).display()
        ),
    })
}

/// The page sizes named by `hugetlb.<size><suffix>` files in `dir`.
pub(crate) fn page_sizes(dir: &Path, suffix: &str) -> Result<Vec<String>> {
    let list_error = |source| CgroupError::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut sizes = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(list_error)? {
        let name = entry.map_err(list_error)?.file_name();
        let Some(size) = name
            .to_str()
            .and_then(|n| n.strip_prefix("hugetlb."))
            .and_then(|n| n.strip_suffix(suffix))
        else {
            continue;
        };
        // "hugetlb.2MB.rsvd.usage_in_bytes" also ends in the suffix; its size has a dot.
        if !size.contains('.') {
            sizes.push(size.to_string());
        }
    }
    sizes.sort();
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_format() {
        for good in ["2MB", "1GB", "64KB"] {
            assert_eq!(checked_page_size(good).unwrap(), good);
        }
        for bad in ["", "MB", "2mb", "2 MB", "../2MB", "2MB/../x", "x2MB"] {
            assert!(checked_page_size(bad).is_err(), "{bad}");
        }
    }
}
