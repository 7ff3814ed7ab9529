"""DLA-60 trunks with Res2Net blocks (dla60_res2net, dla60_res2next)."""
