import re,glob,subprocess
src=glob.glob('crates/*/src/**/*.rs',recursive=True)
alltext={f:open(f).read() for f in glob.glob('crates/**/*.rs',recursive=True)+glob.glob('benchmarks/**/*.rs',recursive=True)}
for f in src:
    for m in re.finditer(r'^\s*pub(?:\(crate\))?\s+(?:const\s+)?fn\s+(\w+)',alltext[f],re.M):
        name=m.group(1)
        if name in ('main','new','default','fmt','from_str'): continue
        n=0
        for g,t in alltext.items():
            n+=len(re.findall(r'\b'+name+r'\b',t))
        if n<=1: print(f, name)
