// SPDX-License-Identifier: GPL-2.0
/*
 * The C functions luo's Rust files declare by hand, checked against the
 * kernel's own headers at build time. The bindings of an out-of-tree build
 * lack these headers, and KHO changed exactly these signatures between
 * releases; a hand declaration that no longer matches would link and then
 * pass wrong arguments. This file generates no code: a changed header fails
 * the build here.
 *
 * Each assertion below spells the type the Rust declaration states:
 * kho.rs (KHO) and reboot.rs (the reboot notifier chain, kexec_in_progress).
 */

#include <linux/build_bug.h>
#include <linux/kexec.h>
#include <linux/kexec_handover.h>
#include <linux/notifier.h>
#include <linux/reboot.h>
#include <linux/types.h>

#define LUO_DECL(fn, type) \
	static_assert(__builtin_types_compatible_p(typeof(fn) *, type), \
		      #fn " changed: update its declaration in luo's Rust files")

#ifdef CONFIG_KEXEC_HANDOVER
/* kho.rs, module kho_c. */
LUO_DECL(kho_is_enabled, bool (*)(void));
LUO_DECL(is_kho_boot, bool (*)(void));
LUO_DECL(kho_alloc_preserve, void *(*)(size_t));
LUO_DECL(kho_unpreserve_free, void (*)(void *));
LUO_DECL(kho_add_subtree, int (*)(const char *, void *, size_t));
LUO_DECL(kho_remove_subtree, void (*)(void *));
LUO_DECL(kho_retrieve_subtree, int (*)(const char *, phys_addr_t *, size_t *));
#endif

/* reboot.rs. */
LUO_DECL(register_reboot_notifier, int (*)(struct notifier_block *));
LUO_DECL(unregister_reboot_notifier, int (*)(struct notifier_block *));
static_assert(SYS_RESTART == 0x0001, "SYS_RESTART changed: update reboot.rs");
#ifdef CONFIG_KEXEC_CORE
static_assert(__builtin_types_compatible_p(typeof(kexec_in_progress), bool),
	      "kexec_in_progress changed: update reboot.rs");
#endif
