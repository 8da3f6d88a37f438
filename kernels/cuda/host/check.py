#!/usr/bin/env python3
"""Host emulation check of the CUDA kernels (see emulate.sh and shim.h).

usage: check.py LIB VECTORS_DIR. Exits 1 on any mismatch.
"""
import ctypes as C, glob, json, os, random, sys

LIB, VECTORS = sys.argv[1], sys.argv[2]
L = C.CDLL(LIB)
u64 = C.c_uint64
i32 = C.c_int32
u32 = C.c_uint32


def golden():
    """Run every golden vector through its kernel; count byte mismatches."""
    def dec(t):
        b = bytes.fromhex(t['hex'])
        if t['dtype'] == 'i8': return (C.c_int8 * len(b)).from_buffer_copy(b), len(b)
        n = len(b)//4; return (C.c_int32 * n).from_buffer_copy(b), n
    def prod(s):
        r = 1
        for d in s: r *= d
        return r
    def outbuf(e):
        n = prod(e['shape'])
        return (C.c_int8 * n)() if e['dtype']=='i8' else (C.c_int32 * n)()
    def arr(t, vals): return (t * max(1,len(vals)))(*vals)
    def strides(s):
        st=[1]*len(s)
        for d in range(len(s)-2,-1,-1): st[d]=st[d+1]*s[d+1]
        return st
    ok = bad = 0
    for f in sorted(glob.glob(os.path.join(VECTORS, '*.json'))):
        v = json.load(open(f)); p = v['params']; op = v['op']; e = v['expected']
        ins = v['inputs']; x, xn = dec(ins[0]); xs = ins[0]['shape']; zx = ins[0]['zero_point']; zy = v['output_zero_point']
        y = outbuf(e)
        if op == 'dense':
            k = p['in_features']; n = p['out_features']; rows = xn // k
            w = arr(C.c_int8, p['weights']); b = arr(C.c_int32, p['bias'])
            if p['out_dtype'] == 'i8':
                m = arr(C.c_int32, [r['multiplier'] for r in p['requant']]); s = arr(C.c_int32, [r['shift'] for r in p['requant']])
                L.infera_dense_i8(x, w, b, m, s, y, u64(rows), u64(k), u64(n), i32(zx), i32(zy), i32(p['act_min']), i32(p['act_max']))
            else:
                L.infera_dense_i32(x, w, b, y, u64(rows), u64(k), u64(n), i32(zx))
        elif op == 'conv2d':
            N,Cc,H,W = xs; _,oc,oh,ow = e['shape']
            w = arr(C.c_int8, p['weights']); b = arr(C.c_int32, p['bias'])
            geo = [N,Cc,H,W,oc,oh,ow,p['kernel'][0],p['kernel'][1],p['stride'][0],p['stride'][1],p['dilation'][0],p['dilation'][1],p['pads'][0],p['pads'][1],p['groups']]
            geo = [u64(g) for g in geo]
            if p['out_dtype'] == 'i8':
                m = arr(C.c_int32, [r['multiplier'] for r in p['requant']]); s = arr(C.c_int32, [r['shift'] for r in p['requant']])
                L.infera_conv2d_i8(x, w, b, m, s, y, *geo, i32(zx), i32(zy), i32(p['act_min']), i32(p['act_max']))
            else:
                L.infera_conv2d_i32(x, w, b, y, *geo, i32(zx))
        elif op in ('max_pool','avg_pool'):
            q = p if op=='max_pool' else p['pool']
            N,Cc,H,W = xs; _,_,oh,ow = e['shape']
            geo = [u64(g) for g in [N*Cc,H,W,oh,ow,q['kernel'][0],q['kernel'][1],q['stride'][0],q['stride'][1],q['pads'][0],q['pads'][1]]]
            if op=='max_pool': L.infera_max_pool(x, y, *geo)
            else: L.infera_avg_pool(x, y, *geo, i32(1 if p['count_include_pad'] else 0), i32(zx))
        elif op == 'global_avg_pool':
            N,Cc,H,W = xs; L.infera_global_avg_pool(x, y, u64(N*Cc), u64(H*W), i32(zx))
        elif op == 'clip': L.infera_clip(x, y, u64(xn), i32(p['min']), i32(p['max']))
        elif op == 'add':
            b2,_ = dec(ins[1]); L.infera_add(x, b2, y, u64(xn), i32(zx), i32(ins[1]['zero_point']), i32(zy), i32(p['multiplier_a']), i32(p['multiplier_b']), i32(p['shift']), i32(p['act_min']), i32(p['act_max']))
        elif op == 'mul':
            b2,_ = dec(ins[1]); r = p['requant']; L.infera_mul(x, b2, y, u64(xn), i32(zx), i32(ins[1]['zero_point']), i32(zy), i32(r['multiplier']), i32(r['shift']), i32(p['act_min']), i32(p['act_max']))
        elif op == 'requantize':
            if ins[0]['dtype']=='i8': L.infera_requantize_i8(x, y, u64(xn), i32(zx), i32(zy), i32(p['multiplier']), i32(p['shift']))
            else: L.infera_requantize_i32(x, y, u64(xn), i32(zy), i32(p['multiplier']), i32(p['shift']))
        elif op in ('reshape','flatten'):
            L.infera_copy_bytes(x, y, u64(C.sizeof(x)))
        elif op == 'transpose':
            perm = p['perm']; ist = strides(xs); meta = arr(C.c_uint64, [xs[a] for a in perm] + [ist[a] for a in perm])
            (L.infera_transpose_i8 if ins[0]['dtype']=='i8' else L.infera_transpose_i32)(x, y, u64(xn), u32(len(xs)), meta)
        elif op == 'concat':
            ax = p['axis']; outer = prod(xs[:ax]); inner_dst = prod(e['shape'][ax:]); off = 0
            for t in ins:
                tb,_ = dec(t); inner = prod(t['shape'][ax:])
                (L.infera_concat_i8 if t['dtype']=='i8' else L.infera_concat_i32)(tb, y, u64(outer), u64(inner), u64(inner_dst), u64(off)); off += inner
        elif op == 'pad':
            meta = arr(C.c_uint64, e['shape'] + xs + p['before'])
            if ins[0]['dtype']=='i8': L.infera_pad_i8(x, y, u64(prod(e['shape'])), u32(len(xs)), meta, i32(zy))
            else: L.infera_pad_i32(x, y, u64(prod(e['shape'])), u32(len(xs)), meta)
        elif op == 'arg_max':
            ax = p['axis']; (L.infera_arg_max_i8 if ins[0]['dtype']=='i8' else L.infera_arg_max_i32)(x, y, u64(prod(xs[:ax])), u64(xs[ax]), u64(prod(xs[ax+1:])))
        elif op == 'layer_norm':
            n = xs[-1]; g = arr(C.c_int32, p['gamma']); b = arr(C.c_int32, p['beta'])
            L.infera_layer_norm(x, y, u64(xn // n), u64(n), g, b, u64(p['eps']), i32(p['shift']), i32(zy))
        elif op == 'lut':
            L.infera_lut(x, y, u64(xn), arr(C.c_int8, p['table']))
        elif op == 'softmax':
            n = xs[-1]; L.infera_softmax(x, y, u64(xn // n), u64(n), arr(C.c_uint32, p['table']))
        elif op == 'mat_mul':
            b2,_ = dec(ins[1]); bs = ins[1]['shape']; m, k, n = xs[-2], xs[-1], bs[-1]; r = p['requant']
            L.infera_mat_mul(x, b2, y, u64(prod(xs[:-2])), u64(m), u64(k), u64(n), i32(zx), i32(ins[1]['zero_point']), i32(zy), i32(r['multiplier']), i32(r['shift']), i32(p['act_min']), i32(p['act_max']))
        elif op == 'reduce':
            axes = p['axes']; st = strides(xs); kept = [d for d in range(len(xs)) if d not in axes]
            meta = arr(u64, [xs[d] for d in kept] + [st[d] for d in kept] + [xs[d] for d in axes] + [st[d] for d in axes])
            r = p['requant']
            L.infera_reduce(x, y, u64(prod([xs[d] for d in kept])), u64(prod([xs[d] for d in axes])), u32(len(kept)), u32(len(axes)), meta, i32(zx), i32(zy), i32(r['multiplier']), i32(r['shift']), i32(1 if p['mean'] else 0))
        else:
            print('UNHANDLED', op); bad += 1; continue
        got = bytes(y).hex()
        if got == e['hex']: ok += 1
        else: bad += 1; print('MISMATCH', f, '\n got', got[:120], '\n exp', e['hex'][:120])
    print(f'golden vectors: {ok} match, {bad} differ')
    return bad if ok else 1


def paths():
    """Dense/conv with k (or cg*kh*kw) % 4 == 0: aligned buffers take the
    __dp4a path, buffers shifted by one byte the plain path; both must equal
    naive loops, on extreme values and zero points."""
    random.seed(7); mism = 0; runs = 0
    def buf(vals, off):  # int8 buffer whose data starts at byte `off` (alignment control)
        b = (C.c_int8 * (len(vals)+8))()
        base = C.addressof(b); start = (-(base) % 4) + off
        for i,v in enumerate(vals): b[start+i] = v
        return b, C.cast(C.c_void_p(base+start), C.POINTER(C.c_int8))
    ext = lambda: random.choice([-128,127,-127,0,1,-1, random.randint(-128,127)])
    for t in range(300):
        rows = random.randint(1,3); k = 4*random.randint(1,40); n = random.randint(1,6)
        xv = [ext() for _ in range(rows*k)]; wv = [ext() for _ in range(n*k)]
        zx = random.choice([-128,127,0,random.randint(-128,127)])
        bias = (C.c_int32*n)(*[random.randint(-1000,1000) for _ in range(n)])
        outs = []
        for off in (0,1):
            xb,xp = buf(xv,off); wb,wp = buf(wv,off); y = (C.c_int32*(rows*n))()
            L.infera_dense_i32(xp, wp, bias, y, u64(rows), u64(k), u64(n), i32(zx)); outs.append(list(y))
        ref = [sum((xv[r*k+j]-zx)*wv[o*k+j] for j in range(k)) + bias[o] for r in range(rows) for o in range(n)]
        runs += 1; mism += (outs[0]!=outs[1]) + (outs[0]!=ref)
    # conv: red = cg*kh*kw multiple of 4
    for t in range(300):
        N=random.randint(1,2); g=random.randint(1,3); cg=random.choice([1,2,4]); og=random.randint(1,3)
        kh,kw=random.choice([(2,2),(1,4),(2,1),(3,4),(1,1)]); 
        if (cg*kh*kw)%4: continue
        H,W=random.randint(1,7),random.randint(1,7); sh,sw=random.randint(1,2),random.randint(1,2); dh,dw=random.randint(1,2),random.randint(1,2)
        pt,pl,pb,pr=[random.randint(0,2) for _ in range(4)]
        if H+pt+pb < dh*(kh-1)+1 or W+pl+pr < dw*(kw-1)+1: continue
        oh=(H+pt+pb-(dh*(kh-1)+1))//sh+1; ow=(W+pl+pr-(dw*(kw-1)+1))//sw+1
        c=g*cg; oc=g*og; red=cg*kh*kw
        xv=[ext() for _ in range(N*c*H*W)]; wv=[ext() for _ in range(oc*red)]; zx=random.choice([-128,127,0,random.randint(-128,127)])
        bias=(C.c_int32*oc)(*[random.randint(-1000,1000) for _ in range(oc)])
        outs=[]
        for off in (0,1):
            xb,xp=buf(xv,0); wb,wp=buf(wv,off); y=(C.c_int32*(N*oc*oh*ow))()
            L.infera_conv2d_i32(xp,wp,bias,y,*[u64(v) for v in [N,c,H,W,oc,oh,ow,kh,kw,sh,sw,dh,dw,pt,pl,g]],i32(zx)); outs.append(list(y))
        ref=[]
        for img in range(N):
         for ch in range(oc):
          gr=ch//og
          for oy in range(oh):
           for ox in range(ow):
            a=bias[ch]
            for ci in range(cg):
             for ky in range(kh):
              for kx in range(kw):
               iy=oy*sh+ky*dh-pt; ix=ox*sw+kx*dw-pl
               if 0<=iy<H and 0<=ix<W:
                a+=(xv[((img*c+gr*cg+ci)*H+iy)*W+ix]-zx)*wv[((ch*cg+ci)*kh+ky)*kw+kx]
            ref.append(a)
        runs += 1; mism += (outs[0]!=outs[1]) + (outs[0]!=ref)
    print(f'dp4a vs plain vs naive: {runs} random cases, {mism} mismatches')
    return mism


if __name__ == '__main__':
    sys.exit(1 if golden() + paths() else 0)
