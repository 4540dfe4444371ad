// Package images keeps Docker and OCI container images on disk without a
// Docker daemon and turns them into task root filesystems, the way the
// Mesos unified containerizer provisions images. The appliance keeps its
// store at <data-dir>/images; `aurorabox image pull|load|ls|rm` and the
// agent use it.
//
// # Layout
//
// Everything is addressed by digest; names only point at digests:
//
//	<root>/lock                      flock(2) held while the index changes or GC runs
//	<root>/index.json                images by ID (config digest) and the name → ID tags
//	<root>/blobs/sha256/<hex>        image configs and manifests, verified against <hex>
//	<root>/layers/sha256/<hex>/fs    one unpacked layer per diff ID, whiteouts in overlayfs form
//	<root>/layers/sha256/<hex>/meta.json  its size, whiteouts and opaque directories
//	<root>/containers/<id>/          a prepared root filesystem (rootfs, and upper/work for overlayfs)
//	<root>/tmp/<lease>/ and .lock    a pull or load in progress: its unpack dirs and the layers it needs
//
// # Lifecycle
//
// Pull (from a registry) and Load (a `docker save` archive or an OCI image
// layout) stream each layer that is not in the store yet, hash it while it
// is read and unpack it into a temporary directory beneath a lease; only a
// layer whose bytes match both its digest and its diff ID is renamed into
// layers/, so a corrupt or hostile layer leaves nothing behind, and a layer
// that two images share is unpacked once. Unpacking opens every path
// beneath the layer's root (os.Root), so names with "..", absolute names and
// symbolic links that lead out of the layer are refused instead of
// followed. Whiteouts (.wh.<name>) and opaque directories (.wh..wh..opq)
// are kept as overlayfs expects them (a 0:0 character device, the
// trusted.overlay.opaque xattr) when the store runs as root, and are always
// listed in the layer's meta.json for the copy fallback.
//
// Prepare gives a container (an agent's task) its root filesystem: an
// overlayfs mount whose lower directories are the image's layers and whose
// upper and work directories belong to the container, or, when the kernel
// or privileges do not allow that mount, a copy of the layers applied in
// order. It returns the image's config (Env, WorkingDir, User, Entrypoint,
// Cmd) for the agent to apply. Release unmounts and removes it. An image
// with a prepared container is in use: Remove then only hides it (it is
// neither listed nor prepared again). GC removes images that are not in
// use, least recently used first, until the store fits its size cap, and
// then every layer and blob no image, container or lease refers to.
//
// # Use by the agent
//
// For a task with an image: Ensure(ctx, ref, progress) (pulls unless the
// store has it), then Prepare(ctx, ref, containerID) for the Rootfs whose
// Path becomes the task's root (pivot_root in its own mount namespace) and
// whose Config the task's process gets; Release(ctx, containerID) when the
// task is gone, and GC now and then. Prepare again for a container that
// exists (after an agent restart) returns it. Errors of Pull and Load are
// *PullError, whose Kind says why (unknown image, refused, unreachable,
// bad digest, refused layer), for a TASK_FAILED reason.
package images
