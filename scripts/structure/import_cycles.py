import re,os,glob,sys
# module graph per crate: nodes = module paths; edges from `use crate::a::b`, `use super::x`, `crate::a::` paths in code
def modpath(f, src):
    rel=os.path.relpath(f,src)[:-3].split('/')
    if rel[-1] in ('mod','lib','main'): rel=rel[:-1]
    return tuple(rel)
for src in sorted(glob.glob('crates/*/src')):
    files=glob.glob(src+'/**/*.rs',recursive=True)
    mods={modpath(f,src):f for f in files}
    edges={m:set() for m in mods}
    def resolve(parts):
        # longest prefix that is a module
        for k in range(len(parts),0,-1):
            if tuple(parts[:k]) in mods: return tuple(parts[:k])
        return ()
    for m,f in mods.items():
        text=open(f).read()
        text=re.sub(r'#\[cfg\(test\)\]\s*mod tests \{.*','',text,flags=re.S)
        text='\n'.join(l for l in text.split('\n') if not l.strip().startswith('//'))
        text=re.sub(r'"(\\.|[^"\\])*"','""',text)
        for mt in re.finditer(r'\b(crate|super)((?:::\w+)*)::\{?',text):
            kind,path=mt.group(1),mt.group(2).split('::')[1:]
            # nested use groups: `use super::{a::X, b::Y}`
            if mt.group(0).endswith('{'):
                depth=1; k=mt.end(); inner=''
                while k<len(text) and depth>0:
                    ch=text[k]; depth+= (ch=='{') - (ch=='}'); inner+=ch; k+=1
                for item in re.findall(r'(\w+)::',inner):
                    base2=(list(m[:-1]) if kind=='super' else [])
                    full2=base2+path+[item]
                    t2=resolve(full2)
                    if t2 and t2!=m: edges[m].add(t2)
            if kind=='crate': base=[]
            else:
                base=list(m[:-1]) if not f.endswith('mod.rs') else list(m[:-1])
            # handle super::super
            full=base+path
            while 'super' in full:
                i=full.index('super'); full=full[:i-1]+full[i+1:] if i>0 else full[1:]
            t=resolve(full)
            if t!=m and t!=() : edges[m].add(t)
            elif t==() and kind=='super' and m[:-1]!=(): edges[m].add(tuple(m[:-1]))
        for mt in re.finditer(r'^\s*(?:pub(?:\([^)]*\))?\s+)?use\s+(\w+)::',text,re.M):
            name=mt.group(1)
            if name in ('crate','super','self','std','core'): continue
            t=m+(name,)
            if t in mods: edges[m].add(t)
    # find cycles (SCCs)
    idx={};low={};st=[];on=set();out=[];c=[0]
    def sc(v):
        idx[v]=low[v]=c[0];c[0]+=1;st.append(v);on.add(v)
        for w in edges[v]:
            if w not in idx: sc(w);low[v]=min(low[v],low[w])
            elif w in on: low[v]=min(low[v],idx[w])
        if low[v]==idx[v]:
            comp=[]
            while True:
                w=st.pop();on.discard(w);comp.append(w)
                if w==v: break
            if len(comp)>1: out.append(comp)
    sys.setrecursionlimit(10000)
    for v in mods:
        if v not in idx: sc(v)
    for comp in out: print(src, ['::'.join(x) or 'crate' for x in comp])
