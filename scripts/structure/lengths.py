import re,sys,os,glob
# report functions longer than N lines and files longer than M lines in crates/*/src
N=int(sys.argv[1]) if len(sys.argv)>1 else 80
files=glob.glob('crates/*/src/**/*.rs',recursive=True)
for f in sorted(files):
    lines=open(f).read().split('\n')
    if len(lines)>600: print(f"FILE {f} {len(lines)}")
    i=0
    in_test=False
    while i<len(lines):
        l=lines[i]
        m=re.match(r'\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)',l)
        if m:
            # find opening brace
            depth=0;started=False;j=i
            while j<len(lines):
                s=re.sub(r'"(\\.|[^"\\])*"','""',lines[j])
                s=re.sub(r"'(\\.|[^'\\])'","''",s)
                s=s.split('//')[0]
                for ch in s:
                    if ch=='{': depth+=1;started=True
                    elif ch=='}': depth-=1
                if started and depth<=0: break
                if not started and s.rstrip().endswith(';'): break
                j+=1
            n=j-i+1
            if n>N: print(f"FN {f}:{i+1} {m.group(6)} {n}")
        i+=1
