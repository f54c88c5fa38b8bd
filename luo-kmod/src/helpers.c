// SPDX-License-Identifier: GPL-2.0
/*
 * The sysfs helpers of kernel::sysfs, for an out-of-tree build: in the tree
 * they are rust/helpers/sysfs.c, and bindgen declares them for Rust; out of
 * tree this module compiles the same file, and kernel/sysfs.rs declares its
 * functions by hand.
 *
 * The prototypes below spell those Rust declarations. They come before the
 * definitions, so a helper whose definition changes without its Rust
 * declaration fails the build here with conflicting types.
 */

#include <linux/kobject.h>
#include <linux/sysfs.h>

void rust_helper_sysfs_kobj_attribute_set_show(struct kobj_attribute *attr,
					       ssize_t (*show)(struct kobject *,
							       struct kobj_attribute *,
							       char *));
void rust_helper_sysfs_group_set_attrs(struct attribute_group *grp,
				       struct attribute **attrs);
struct kernfs_node *rust_helper_sysfs_get_dirent(struct kernfs_node *parent,
						 const char *name);
void rust_helper_sysfs_put(struct kernfs_node *kn);
void rust_helper_sysfs_notify_dirent(struct kernfs_node *kn);

/* Defined in rust/helpers/helpers.c in the tree: plain functions here. */
#define __rust_helper
#include "../kernel/helpers/sysfs.c"
