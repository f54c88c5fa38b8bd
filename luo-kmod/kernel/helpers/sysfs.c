// SPDX-License-Identifier: GPL-2.0

#include <linux/kobject.h>
#include <linux/sysfs.h>

/*
 * `show` shares a union with `show_const`, or a struct under CONFIG_CFI, which
 * bindgen names after its position; C code assigns it by name.
 */
__rust_helper void
rust_helper_sysfs_kobj_attribute_set_show(struct kobj_attribute *attr,
					  ssize_t (*show)(struct kobject *,
							  struct kobj_attribute *,
							  char *))
{
	attr->show = show;
}

/* `attrs` shares an anonymous union with `attrs_const`, as above. */
__rust_helper void rust_helper_sysfs_group_set_attrs(struct attribute_group *grp,
						     struct attribute **attrs)
{
	grp->attrs = attrs;
}

__rust_helper struct kernfs_node *
rust_helper_sysfs_get_dirent(struct kernfs_node *parent, const char *name)
{
	return sysfs_get_dirent(parent, name);
}

__rust_helper void rust_helper_sysfs_put(struct kernfs_node *kn)
{
	sysfs_put(kn);
}

__rust_helper void rust_helper_sysfs_notify_dirent(struct kernfs_node *kn)
{
	sysfs_notify_dirent(kn);
}
