// SPDX-License-Identifier: GPL-2.0
/*
 * A stand-in for another live update orchestrator, for luo's tests: it owns the misc device
 * name "liveupdate" and nothing else, so that loading luo.ko next to it must be refused with
 * one log line and no stack trace.
 */

#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>

static const struct file_operations squatter_fops = {
	.owner = THIS_MODULE,
};

static struct miscdevice squatter = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "liveupdate",
	.fops = &squatter_fops,
};

module_misc_device(squatter);

MODULE_DESCRIPTION("Test stand-in that owns the misc device name liveupdate");
MODULE_LICENSE("GPL");
