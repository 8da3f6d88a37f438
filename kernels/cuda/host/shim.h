// Host emulation of the few CUDA built-ins the kernels use, so that
// kernels/cuda/*.cu compile with a plain C++ compiler into a shared library
// that runs every kernel's grid-stride loop on one CPU thread
// (blockIdx = threadIdx = 0, blockDim = gridDim = 1). Used by emulate.sh to
// check the kernels' arithmetic against the golden vectors without a GPU.
// Not a substitute for the GPU parity suite (it cannot see compiler or
// hardware differences), only a check of the integer logic.
#include <cstdint>
struct InferaDim3 {
    unsigned x;
};
static InferaDim3 blockIdx{0}, threadIdx{0}, blockDim{1}, gridDim{1};
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict

// __dp4a(a, b, c): c + the four signed byte products, wrapping like the hardware.
static inline int __dp4a(int a, int b, int c) {
    unsigned s = (unsigned)c;
    for (int l = 0; l < 4; ++l) {
        int x = (signed char)((unsigned)a >> (8 * l));
        int y = (signed char)((unsigned)b >> (8 * l));
        s += (unsigned)(x * y);
    }
    return (int)s;
}
