// SPDX-License-Identifier: GPL-2.0
/*
 * A stand-in for another live update orchestrator, for luo's tests. By default it owns the
 * misc device name "liveupdate" and nothing else, so that loading luo.ko next to it must be
 * refused with one log line and no stack trace. With kho_subtree=1 it owns luo's KHO subtree
 * name "luo-v3-state" instead, so that luo's registration of its handover record fails and
 * luo must go on as with kho=off.
 */

#include <linux/err.h>
#include <linux/fs.h>
#include <linux/kexec_handover.h>
#include <linux/miscdevice.h>
#include <linux/module.h>

static bool kho_subtree;
module_param(kho_subtree, bool, 0444);
MODULE_PARM_DESC(kho_subtree, "Own luo's KHO subtree name instead of the misc device name");

static const struct file_operations squatter_fops = {
	.owner = THIS_MODULE,
};

static struct miscdevice squatter = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "liveupdate",
	.fops = &squatter_fops,
};

static void *blob;

static int __init squatter_init(void)
{
	int err;

	if (!kho_subtree)
		return misc_register(&squatter);
	if (!kho_is_enabled())
		return -EOPNOTSUPP;
	blob = kho_alloc_preserve(PAGE_SIZE);
	if (IS_ERR(blob))
		return PTR_ERR(blob);
	err = kho_add_subtree("luo-v3-state", blob, PAGE_SIZE);
	if (err)
		kho_unpreserve_free(blob);
	return err;
}

static void __exit squatter_exit(void)
{
	if (!kho_subtree) {
		misc_deregister(&squatter);
		return;
	}
	kho_remove_subtree(blob);
	kho_unpreserve_free(blob);
}

module_init(squatter_init);
module_exit(squatter_exit);

MODULE_DESCRIPTION("Test stand-in that owns the name liveupdate, or luo's KHO subtree");
MODULE_LICENSE("GPL");
